"""The ``vaekit`` command line: train a VAE on a built-in dataset or your own file in one command.

Contract for other modules' subcommands: after registering its own commands, ``build_parser`` calls
``add_commands(subparsers)`` from each module in ``APP_MODULES`` that can be imported. Each
subcommand sets ``func=`` via ``set_defaults``; ``func(args)`` returns an exit code (or None for 0).
``main(argv=None) -> int`` dispatches and turns ``UserError``, ``ValueError``, ``FileNotFoundError``
and user-input ``KeyError`` into one line ``error: <message>`` on stderr and exit code 2.
Commands call library functions only (``vaekit.run``, ``vaekit.data``, ``vaekit.plots``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

APP_MODULES = ("vaekit.apps.compression_cli", "vaekit.apps.anomaly_cli", "vaekit.apps.semisupervised_cli")


class UserError(ValueError):
    """A problem with the user's input; the message names it and the fix."""


def formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def command(sub, name: str, func, help: str, examples: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, epilog="examples:\n" + examples,
                       formatter_class=formatter)
    p.set_defaults(func=func)
    return p


def add_data_options(p: argparse.ArgumentParser, *, split: str = "test") -> None:
    p.add_argument("data", nargs="?", default=None, metavar="DATA",
                   help="built-in name or path (default: the run's training data)")
    p.add_argument("--split", default=split, help=f"train, val, test or all (default: {split})")


# -- commands ---------------------------------------------------------------------------------------
def ssl_command(argv: list[str]) -> int:
    """Run one of the semi-supervised app's commands with its own defaults."""
    from vaekit.apps import semisupervised_cli

    parser = argparse.ArgumentParser(prog="vaekit")
    semisupervised_cli.add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def cmd_train(args) -> int:
    from vaekit.run import read_run_config, resolve_config, train_run

    if args.semi_supervised or args.labels:
        if not (args.semi_supervised and args.labels and args.data and args.out):
            raise UserError("Semi-supervised training needs DATA, --labels, --out and --semi-supervised, e.g. "
                            "vaekit train data.csv --labels digit --semi-supervised --out runs/ssl.")
        return ssl_command(["ssl-train", args.data, "--labels", args.labels, "--out", args.out]
                           + (["--force"] if args.overwrite else []))

    resume = args.resume is not None
    out = Path(args.resume) if isinstance(args.resume, str) else None
    if resume:
        out = out or (Path(args.out) if args.out else None)
        if out is None:
            raise UserError("--resume needs the run directory: vaekit train --resume RUN_DIR.")
        cfg = read_run_config(out, args.set)
    else:
        if args.data is None and args.config is None:
            raise UserError("Name the data to train on, e.g. vaekit train digits (or give --config FILE).")
        cfg = resolve_config(data=args.data, config_file=args.config, sets=args.set)
        out = Path(args.out) if args.out else Path("runs") / Path(cfg.data.source).stem
    from vaekit import distributed

    if distributed.setup() and not distributed.is_main():  # torchrun: ranks > 0 train in step, write nothing
        return distributed.worker_train(cfg, out, resume=resume)
    try:
        record = train_run(cfg, out, overwrite=args.overwrite, resume=resume, eval_k=args.k)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the checkpoint is in {out}; continue with: vaekit train --resume {out}",
              file=sys.stderr)
        return 130
    print_record(record, title=f"test split of {cfg.data.source}")
    print(f"\nrun written to {out}/ (open {out / 'report.html'})")
    return 0


def cmd_evaluate(args) -> int:
    from vaekit.run import EVALUATION, atomic_write_text, evaluate_model, load_for_run, load_run

    model, cfg, meta = load_run(args.run_dir)
    x, _ = load_for_run(args.data, cfg, meta).split(args.split)
    record = evaluate_model(model, meta, x, k=args.k)
    record["split"], record["data"] = args.split, args.data or cfg.data.source
    path = Path(args.json) if args.json else Path(args.run_dir) / EVALUATION
    atomic_write_text(path, json.dumps(record, indent=2))
    print_record(record, title=f"{args.split} split of {record['data']}")
    print(f"\nwritten to {path}")
    return 0


def print_record(record: dict, *, title: str) -> None:
    rows = [("ELBO", "elbo", "nats"), ("log p(x) (IWAE)", "log_likelihood", "nats"),
            ("NLL", "bits_per_dim", "bits/dim"), ("KL", "kl", "nats"), ("E_q log p(x|z)", "log_px_z", "nats"),
            ("active units", "active_units", f"of {len(record.get('kl_per_dim') or []) or '?'}"),
            ("reconstruction error", "reconstruction_mse", "sq. error per example"),
            ("importance samples k", "k", ""), ("examples", "n_examples", "")]
    print(f"{title} ({record.get('units', 'nats per example')}):")
    for label, key, unit in rows:
        if key in record:
            v = record[key]
            print(f"  {label:<22} {v:>12.4f} {unit}" if isinstance(v, float) else f"  {label:<22} {v:>12} {unit}")


def images_or_table(path: str | Path, x, meta, *, ncol: int = 8, pairs=None) -> Path:
    """Write model-space rows as a PNG grid (image data) or as a data file in original units."""
    from vaekit.data.outputs import to_user, write_array
    from vaekit.plots import as_images, image_grid, pairs_grid, save_png

    path = Path(path)
    if path.suffix.lower() == ".png":
        if not meta.image_shape:
            raise UserError(f"{meta.name} is not image data; write {path.stem}.csv instead of a PNG.")
        images = as_images(x, meta)
        if pairs is not None:
            images = pairs_grid(as_images(pairs, meta), images, ncol=ncol)
        return save_png(image_grid(images, ncol), path)
    return write_array(path, to_user(x.numpy(), meta), names=meta.feature_names or None)


def cmd_sample(args) -> int:
    from vaekit.run import load_run, sample

    if args.klass is not None:
        return ssl_command(["ssl-sample", args.run_dir, "--class", args.klass, "-n", str(args.n), "--out", args.out,
                            "--seed", str(args.seed)] + (["--mean"] if args.mean else [])
                           + (["--force"] if args.force else []))

    model, _, meta = load_run(args.run_dir)
    mean = args.mean or (bool(meta.image_shape) and not args.random)
    x = sample(model, args.n, seed=args.seed, mean=mean)
    print(f"wrote {images_or_table(args.out, x, meta)}")
    return 0


def cmd_reconstruct(args) -> int:
    from vaekit.run import load_for_run, load_run, reconstruct

    model, cfg, meta = load_run(args.run_dir)
    x, _ = load_for_run(args.data, cfg, meta).split(args.split)
    x = x[: args.n] if args.n else x
    out = images_or_table(args.out, reconstruct(model, x), meta, pairs=x)
    print(f"wrote {out}" + (" (originals above reconstructions)" if out.suffix == ".png" else ""))
    return 0


def cmd_encode(args) -> int:
    from vaekit.data.outputs import write_array
    from vaekit.evaluate import posterior_means
    from vaekit.run import load_for_run, load_run

    model, cfg, meta = load_run(args.run_dir)
    x, y = load_for_run(args.data, cfg, meta).split(args.split)
    z = posterior_means(model, x).numpy()
    names = [f"z{i}" for i in range(z.shape[1])]
    if y is not None and Path(args.out).suffix.lower() != ".npy":
        import pandas as pd

        frame = pd.DataFrame(z, columns=names)
        frame["label"] = [meta.class_names[i] for i in y.tolist()]
        z = frame
    print(f"wrote {write_array(args.out, z, names=names)} ({len(x)} latent means)")
    return 0


def cmd_decode(args) -> int:
    import torch

    from vaekit.data.outputs import read_latents
    from vaekit.run import decode_mean, load_run

    model, _, meta = load_run(args.run_dir)
    z = torch.from_numpy(read_latents(args.latents, model.latent_dim))
    print(f"wrote {images_or_table(args.out, decode_mean(model, z), meta)}")
    return 0


def cmd_interpolate(args) -> int:
    from vaekit.evaluate import posterior_means
    from vaekit.run import decode_mean, interpolation_latents, load_for_run, load_run

    model, cfg, meta = load_run(args.run_dir)
    x, _ = load_for_run(args.data, cfg, meta).split(args.split)
    for i in (args.a, args.b):
        if not -len(x) <= i < len(x):
            raise UserError(f"Index {i} is out of range: the {args.split} split has {len(x)} examples.")
    za, zb = posterior_means(model, x[[args.a, args.b]])
    x_out = decode_mean(model, interpolation_latents(za, zb, args.steps))
    print(f"wrote {images_or_table(args.out, x_out, meta, ncol=args.steps)}")
    return 0


def cmd_traverse(args) -> int:
    from vaekit.run import decode_mean, load_run, traversal_latents

    model, _, meta = load_run(args.run_dir)
    dims = args.dims if args.dims is not None else list(range(min(10, model.latent_dim)))
    bad = [d for d in dims if not 0 <= d < model.latent_dim]
    if bad:
        raise UserError(f"Latent dimension(s) {bad} do not exist; the model has latent_dim={model.latent_dim}.")
    z = traversal_latents(model.latent_dim, dims, steps=args.steps, span=args.span)
    print(f"wrote {images_or_table(args.out, decode_mean(model, z), meta, ncol=args.steps)} "
          f"(rows: dimensions {dims}; columns: {-args.span} to {args.span})")
    return 0


def cmd_info(args) -> int:
    from vaekit.io import read_config
    from vaekit.run import EVALUATION, load_run

    _, cfg, meta = load_run(args.run_dir)
    extra = read_config(args.run_dir)["extra"]
    m, t, tr = cfg.model, cfg.train, extra.get("training", {})
    print(f"run {args.run_dir}")
    print(f"  data      {cfg.data.source} ({meta.kind}, example shape {tuple(meta.shape)}, "
          f"{len(meta.class_names)} classes)")
    print(f"  model     {m.network} network, hidden {tuple(m.hidden)}, latent_dim {m.latent_dim}, "
          f"{m.likelihood} likelihood, {m.prior} prior")
    print(f"  training  {tr.get('epochs')} epochs of {t.epochs}, batch {t.batch_size}, lr {t.lr}, "
          f"{t.objective} objective, {tr.get('seconds')} s; {tr.get('n_train')} train / "
          f"{tr.get('n_val')} val / {tr.get('n_test')} test examples")
    print(f"  validation ELBO {tr.get('val_elbo', float('nan')):.4f} nats, KL {tr.get('val_kl', float('nan')):.4f} nats "
          f"(last epoch{'; original units' if meta.table else ''})")
    path = Path(args.run_dir) / EVALUATION
    if path.exists():
        print_record(json.loads(path.read_text()), title="evaluation.json")
    return 0


# -- parser -----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaekit", formatter_class=formatter,
        description="Variational autoencoders on your data: train, evaluate, sample, encode.",
        epilog="examples:\n  vaekit train digits --out runs/digits\n  vaekit info runs/digits\n"
               "  vaekit sample runs/digits -n 64 --out samples.png\n\n"
               "Run 'vaekit COMMAND --help' for a command's options.")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for torch (default: torch's choice; 1 on machines with <= 2 cores)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = command(sub, "train", cmd_train, "Train a VAE and write a run directory.",
                "  vaekit train digits --out runs/digits\n"
                "  vaekit train data.csv --set data.label=species --set latent_dim=4\n"
                "  vaekit train --config configs/binarized_mnist.toml --out runs/mnist\n"
                "  vaekit train --resume runs/digits     # continue an interrupted run")
    p.add_argument("data", nargs="?", default=None, metavar="DATA",
                   help="built-in name (digits) or a path: .npy .npz .csv .parquet .mat, IDX, image folder")
    p.add_argument("--config", metavar="FILE", help="TOML file with [data], [model], [train] sections")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. model.latent_dim=8 or epochs=5 (repeatable)")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/<data name>)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in RUN_DIR")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="RUN_DIR",
                   help="continue from RUN_DIR/checkpoint.pt with the run's config.toml")
    p.add_argument("--k", type=int, default=100, help="importance samples for the test evaluation (default 100)")
    p.add_argument("--labels", metavar="COLUMN_OR_FILE",
                   help="with --semi-supervised: label column or file; -1 marks unlabelled rows")
    p.add_argument("--semi-supervised", action="store_true",
                   help="train a semi-supervised classifier (M2, Kingma et al. 2014); same as vaekit ssl-train")

    p = command(sub, "evaluate", cmd_evaluate, "ELBO, log-likelihood, KL, active units of a trained run.",
                "  vaekit evaluate runs/digits digits --k 1000\n"
                "  vaekit evaluate runs/tab new.csv --split all --json scores.json")
    p.add_argument("run_dir", metavar="RUN_DIR")
    add_data_options(p)
    p.add_argument("--k", type=int, default=1000, help="importance samples (default 1000)")
    p.add_argument("--json", metavar="FILE", help="write here (default: RUN_DIR/evaluation.json)")

    p = command(sub, "sample", cmd_sample, "Draw new examples from the prior.",
                "  vaekit sample runs/digits -n 64 --out samples.png\n"
                "  vaekit sample runs/tab -n 1000 --out fake.csv")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--out", required=True, metavar="FILE", help=".png (images), .csv, .parquet or .npy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random", action="store_true", help="draw x ~ p(x|z) (the default for tables)")
    p.add_argument("--mean", action="store_true", help="decode the mean E[x|z] (the default for images)")
    p.add_argument("--class", dest="klass", metavar="K",
                   help="class-conditional samples of class K (semi-supervised runs); same as vaekit ssl-sample")
    p.add_argument("--force", action="store_true", help="with --class: overwrite FILE")

    p = command(sub, "reconstruct", cmd_reconstruct, "Encode and decode examples.",
                "  vaekit reconstruct runs/digits -n 16 --out recon.png\n"
                "  vaekit reconstruct runs/tab data.csv --split all --out recon.csv")
    p.add_argument("run_dir", metavar="RUN_DIR")
    add_data_options(p)
    p.add_argument("-n", type=int, default=32, help="first n examples; 0 = all (default 32)")
    p.add_argument("--out", required=True, metavar="FILE", help=".png, .csv, .parquet or .npy")

    p = command(sub, "encode", cmd_encode, "Write latent means E_q[z|x] (by extension).",
                "  vaekit encode runs/digits digits --split all --out z.parquet")
    p.add_argument("run_dir", metavar="RUN_DIR")
    add_data_options(p, split="all")
    p.add_argument("--out", required=True, metavar="FILE", help=".npy, .csv or .parquet")

    p = command(sub, "decode", cmd_decode, "Decode latent vectors (from vaekit encode) to data.",
                "  vaekit decode runs/digits z.npy --out decoded.png")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("latents", metavar="LATENTS", help=".npy, .csv or .parquet with latent_dim columns")
    p.add_argument("--out", required=True, metavar="FILE", help=".png, .csv, .parquet or .npy")

    p = command(sub, "interpolate", cmd_interpolate, "Decode a straight line between two examples' latents.",
                "  vaekit interpolate runs/digits digits 0 1 --out strip.png")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("data", metavar="DATA", help="built-in name or path")
    p.add_argument("a", type=int, metavar="A", help="index of the first example in the split")
    p.add_argument("b", type=int, metavar="B", help="index of the second example")
    p.add_argument("--split", default="test", help="train, val, test or all (default: test)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--out", required=True, metavar="FILE", help=".png strip or .csv")

    p = command(sub, "traverse", cmd_traverse, "Sweep one latent dimension at a time, the others at 0.",
                "  vaekit traverse runs/digits --out traversals.png\n"
                "  vaekit traverse runs/digits --dims 0 3 --steps 11 --span 2.5 --out t.png")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--dims", type=int, nargs="+", help="latent dimensions (default: the first 10)")
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--span", type=float, default=3.0, help="sweep from -span to +span (default 3)")
    p.add_argument("--out", required=True, metavar="FILE", help=".png grid or .csv")

    p = command(sub, "info", cmd_info, "What the model is, how it was trained, its numbers.",
                "  vaekit info runs/digits")
    p.add_argument("run_dir", metavar="RUN_DIR")

    for name in APP_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        module.add_commands(sub)
    return parser


def set_threads(n: int | None) -> None:
    """CPU threads for torch: ``--threads``, else the library's policy (one on machines with two
    cores or fewer, where OpenMP workers spinning against other processes slow small models down)."""
    from vaekit.runtime import default_threads
    from vaekit.runtime import set_threads as use_threads

    use_threads(n or default_threads())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    set_threads(getattr(args, "threads", None))
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as e:
        if isinstance(e, KeyError) and not isinstance(e.args[0] if e.args else None, str):
            raise
        message = e.args[0] if isinstance(e, KeyError) else str(e)
        if isinstance(e, FileNotFoundError) and e.filename:
            message = f"{e.filename} does not exist ({e.strerror}); check the path."
        print("error: " + " ".join(str(message).split()), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
