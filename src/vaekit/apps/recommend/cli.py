"""``vaekit recommend fit | top | evaluate``: recommendation from the command line.

    vaekit recommend fit ratings.csv --user user_id --item item_id --rating rating --min-rating 3.5 --out rec/
    vaekit recommend top rec/ history.csv -n 10 --out recs.csv     # history in the fit file's columns
    vaekit recommend evaluate rec/ ratings.csv                    # strong generalisation: 80% shown, 20% scored

``fit`` writes the model and ``rec/report.md`` (the validation NDCG@100 curve per epoch). Files are
CSV, TSV (RecBole's ``.inter`` with typed headers works) or Parquet.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vaekit.atomic import atomic_write, atomic_write_text
from vaekit.cli_common import UserError, add_overwrite, add_settings, command, new_output, settings

MODELS = ("vae", "mult-vae", "mult-dae", "recvae")  # the same names as vaekit.apps.recommend.estimator.MODELS (tested)


def model_spec(text: str) -> str:
    """``--model``: one name of MODELS or several joined by '+'."""
    if not text or any(name not in MODELS for name in text.split("+")):
        raise argparse.ArgumentTypeError(f"unknown model {text!r}; choose {', '.join(MODELS)} or several joined by '+' "
                                         "(e.g. vae+recvae)")
    return text


def report(rec, args) -> str:
    lines = [f"# Recommender fitted on {args.data}", "",
             f"model {rec.model!r}, {rec.n_warm_} items, best validation NDCG@100 "
             + (f"{rec.val_ndcg_:.4f} at epoch {rec.history_.best_epoch}" if rec.val_ndcg_ is not None
                else "not measured (too few users for a validation set)"), "",
             "| epoch | beta | train ELBO (nats/user) | validation NDCG@100 |", "|---|---|---|---|"]
    for r in rec.curve_:
        v = r.get("val_ndcg@100")
        lines.append(f"| {r['epoch']} | {r['beta']:.3f} | {r['train_elbo']:.2f} | {'' if v is None else f'{v:.4f}'} |")
    return "\n".join(lines) + "\n"


def run_fit(args) -> int:
    from vaekit.apps.recommend.data import read_interactions
    from vaekit.apps.recommend.estimator import Recommender

    out = Path(args.out)
    if (out / "config.json").exists() and not args.overwrite:
        raise UserError(f"{out} already holds a saved model; choose another --out or pass --overwrite.")
    given = {"model": args.model, "user": args.user, "item": args.item, "rating": args.rating or None,
             "min_rating": args.min_rating, "epochs": args.epochs, "random_state": args.seed,
             "verbose": 0 if args.quiet else 1}
    rec = Recommender(**settings(args, Recommender, given=given))
    frame = read_interactions(args.data)
    items = read_interactions(args.item_features) if args.item_features else None
    rec.fit(frame, item_features=items)
    rec.save(out, overwrite=args.overwrite)
    atomic_write_text(out / "report.md", report(rec, args))
    best = f"best validation NDCG@100 {rec.val_ndcg_:.4f}" if rec.val_ndcg_ is not None else "no validation set"
    print(f"fitted {rec.model} on {args.data}: {rec.n_warm_} items, {len(rec.curve_)} epochs, {best}; "
          f"saved to {out} (curve in {out / 'report.md'})")
    return 0


def run_top(args) -> int:
    import numpy as np
    import pandas as pd

    from vaekit.apps.recommend.data import read_interactions
    from vaekit.apps.recommend.estimator import Recommender

    if args.n < 0:
        raise UserError(f"-n must be 0 or more items, got {args.n}.")
    out = new_output(args.out, args.overwrite)
    rec = Recommender.load(args.model_dir)
    frame = read_interactions(args.history)
    M, users = rec.history_matrix(frame, name=args.history)
    ids, scores = rec.recommend(M, n=args.n)
    rows = pd.DataFrame({rec.user: np.repeat(np.asarray(users, dtype=object), ids.shape[1]),
                         rec.item: ids.ravel(), "rank": np.tile(np.arange(1, ids.shape[1] + 1), len(ids)),
                         "score": scores.ravel()})
    atomic_write(out, lambda p: rows.to_csv(p, index=False))
    print(f"wrote the top {ids.shape[1]} items for {len(users)} users to {out} (score: log-probability of the next click, nats)")
    return 0


def run_evaluate(args) -> int:
    import numpy as np

    from vaekit.apps.recommend.data import read_interactions
    from vaekit.apps.recommend.estimator import Recommender
    from vaekit.apps.recommend.metrics import evaluate_scores
    from vaekit.apps.recommend.splits import fold_in

    rec = Recommender.load(args.model_dir)
    M, _ = rec.history_matrix(read_interactions(args.data), name=args.data)
    M = M[np.asarray(M.sum(1)).ravel() >= 5]
    if M.shape[0] == 0:
        raise ValueError(f"{args.data} has no user with 5 or more known clicks to evaluate.")
    part = fold_in(M, rng=np.random.default_rng(args.seed))
    metrics = evaluate_scores(rec.predict(part.history), part.history, part.held_out)
    metrics["users"] = int(M.shape[0])
    text = json.dumps(metrics, indent=2)
    if args.json:
        atomic_write_text(Path(args.json), text + "\n")
    print(text)
    return 0


def add_commands(subparsers) -> None:
    """Register ``recommend fit``, ``recommend top`` and ``recommend evaluate``."""
    rec = subparsers.add_parser("recommend", help="Top-n recommendation from click histories (Mult-VAE).",
                                description="Top-n recommendation from click histories: fit a Mult-VAE on "
                                            "interactions, recommend unseen items, evaluate ranking quality.")
    sub = rec.add_subparsers(dest="recommend_command", required=True, metavar="{fit,top,evaluate}")
    f = command(sub, "fit", run_fit, "Fit a recommender on a file of interactions and save it.",
                "  vaekit recommend fit ratings.csv --user user_id --item item_id --rating rating "
                "--min-rating 3.5 --out rec/\n"
                "  vaekit recommend fit clicks.parquet --out rec/ --set epochs=100")
    f.add_argument("data", help="CSV, TSV or Parquet with one (user, item[, rating]) interaction per row")
    f.add_argument("--out", required=True, help="directory for the fitted recommender")
    f.add_argument("--user", default=None, help="user id column (default: user)")
    f.add_argument("--item", default=None, help="item id column (default: item)")
    f.add_argument("--rating", default="", help="rating column; with --min-rating, only ratings >= it are clicks")
    f.add_argument("--min-rating", type=float, default=None, help="the lowest rating that counts as a click")
    f.add_argument("--item-features", default=None, help="table of item content (id column named like --item): "
                   "items without clicks are recommended from their content")
    f.add_argument("--model", type=model_spec, default=None,
                   help="vae+recvae (default: an ensemble whose members take the names in turn), vae, mult-vae, "
                        "mult-dae or recvae (composite prior, alternating updates), or names joined by '+'")
    f.add_argument("--epochs", type=int, default=None, help="default 200")
    f.add_argument("--seed", type=int, default=None)
    f.add_argument("--quiet", action="store_true", help="no progress lines")
    add_settings(f, "recommender")
    add_overwrite(f, "a recommender already in --out")
    t = command(sub, "top", run_top, "The top n unseen items for each user of a history file.",
                "  vaekit recommend top rec/ history.csv -n 10 --out recs.csv")
    t.add_argument("model_dir")
    t.add_argument("history", help="interactions in the same columns as the fit file")
    t.add_argument("-n", type=int, default=10)
    t.add_argument("--out", required=True, help="CSV: user, item, rank, score")
    add_overwrite(t, "--out")
    e = command(sub, "evaluate", run_evaluate,
                "NDCG@100, Recall@20/50/100 and coverage: 80%% of each user's clicks shown, 20%% scored.",
                "  vaekit recommend evaluate rec/ held_out_users.csv --json metrics.json")
    e.add_argument("model_dir")
    e.add_argument("data", help="interactions of users to evaluate on (held out from fit for an honest number)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", default=None, help="also write the metrics here")
