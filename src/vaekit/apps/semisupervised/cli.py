"""Command line for semi-supervised learning: ``ssl-train``, ``predict`` and ``ssl-sample``.

    vaekit ssl-train DATA --labels FILE_OR_COLUMN --out RUN_DIR [--method m1+m2|m2]
    vaekit predict RUN_DIR DATA [--out FILE.csv] [--proba]
    vaekit ssl-sample RUN_DIR --class K -n 64 --out FILE.npy|.csv

DATA is .npy, .npz (array ``x``/``X`` or the only one), .csv or .parquet (numeric columns).
Labels: a file (.npy, .csv or .txt, one per row) or a column of a .csv/.parquet DATA; -1, an empty
cell or NaN marks an unlabelled row; ``predict`` leaves out the label column the model was trained
with. Handlers raise ValueError/FileNotFoundError for user errors. Nothing heavy is imported at module
level (``vaekit --help`` stays fast).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vaekit.atomic import atomic_write
from vaekit.cli_common import add_overwrite, add_settings, command, new_output, settings


def read_table(path: Path):
    import pandas as pd

    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def load_data(path: str, *, drop: str | None = None):
    """Rows of features through ``vaekit.data``'s readers (.npy, .npz, .csv, .parquet, .mat, IDX, image
    folders); ``drop`` leaves out a label column of a table."""
    from vaekit.data.readers import read_source

    raw = read_source(Path(path))
    x = raw.x
    if drop is not None and hasattr(x, "columns") and drop in x.columns:
        x = x.drop(columns=[drop])
    return x


def load_labels(spec: str, data_path: str, n: int) -> np.ndarray:
    """Integer labels (-1 = unlabelled) from a file, or from the column ``spec`` of the data table."""
    p = Path(spec)
    if p.suffix in (".npy", ".csv", ".txt") and p.exists():
        if p.suffix == ".npy":
            raw = np.load(p, allow_pickle=False)
        else:  # one label per line (first comma-separated field); an optional header line
            cells = [line.split(",")[0].strip() for line in p.read_text().splitlines()]
            raw = np.array(cells[1:] if cells and not is_number(cells[0] or "0") else cells, dtype=object)
    elif Path(data_path).suffix in (".csv", ".parquet"):
        table = read_table(Path(data_path))
        if spec not in table.columns:
            raise ValueError(f"--labels {spec!r} is neither an existing label file nor a column of "
                             f"{data_path} (columns: {', '.join(map(str, table.columns[:10]))}).")
        raw = table[spec].to_numpy()
    else:
        raise FileNotFoundError(f"Label file {spec} does not exist; pass a .npy/.csv/.txt file with one "
                                "label per row (-1 = unlabelled).")
    if raw.dtype == object:
        bad = next((v for v in raw if v not in ("", None) and not is_number(str(v))), None)
        if bad is not None:
            raise ValueError(f"{spec} holds the non-numeric label {bad!r}; use integer class labels and -1 "
                             "(or an empty cell) for unlabelled rows.")
        raw = np.array([np.nan if v in ("", None) else float(v) for v in raw])
    values = np.asarray(raw, dtype=np.float64)
    values = np.where(np.isnan(values), -1, values)
    if len(values) != n:
        raise ValueError(f"{spec} has {len(values)} labels but the data has {n} rows; give one label per row.")
    if not np.all(values == np.round(values)):
        raise ValueError(f"{spec} holds non-integer labels; use integer class labels and -1 for unlabelled rows.")
    return values.astype(np.int64)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def train_classifier(data: str, labels: str, out: str | Path, *, overwrite: bool = False,
                     params: dict | None = None) -> int:
    """Fit a ``SemiSupervisedClassifier`` on DATA with LABELS and save it to ``out``."""
    from vaekit.apps.semisupervised.estimator import SemiSupervisedClassifier

    out = Path(out)
    if (out / "config.json").exists() and not overwrite:
        raise ValueError(f"{out} already holds a saved model; choose another --out or pass --overwrite.")
    X = load_data(data, drop=labels)
    y = load_labels(labels, data, len(X))
    clf = SemiSupervisedClassifier(**(params or {}))
    clf.label_column_ = labels if Path(data).suffix in (".csv", ".parquet") and not Path(labels).exists() else None
    clf.fit(X, y)
    clf.save(out, overwrite=overwrite)
    n_lab = int((y != -1).sum())
    print(f"trained {clf.method} on {len(y)} rows ({n_lab} labelled, {len(clf.classes_)} classes); saved to {out}")
    return 0


def train(args) -> int:
    from vaekit.apps.semisupervised.estimator import SemiSupervisedClassifier

    given = {"method": args.method, "latent_dim": args.latent_dim, "epochs": args.epochs,
             "m1_epochs": args.m1_epochs, "batch_size": args.batch_size, "lr": args.lr, "alpha": args.alpha,
             "device": args.device, "random_state": args.seed, "verbose": 0 if args.quiet else 1,
             "hidden": None if args.hidden is None else tuple(int(h) for h in args.hidden.split(",") if h.strip())}
    return train_classifier(args.data, args.labels, args.out, overwrite=args.overwrite,
                            params=settings(args, SemiSupervisedClassifier, given=given))


def predict(args) -> int:
    from vaekit.apps.semisupervised.estimator import SemiSupervisedClassifier

    clf = SemiSupervisedClassifier.load(args.run_dir)
    X = load_data(args.data, drop=getattr(clf, "label_column_", None))
    proba = clf.predict_proba(X)
    labels = clf.classes_[proba.argmax(1)]
    if args.proba:
        header = "label," + ",".join(f"p_{c}" for c in clf.classes_)
        rows = [f"{lab}," + ",".join(f"{v:.6g}" for v in p) for lab, p in zip(labels, proba, strict=True)]
    else:
        header, rows = "label", [str(v) for v in labels]
    text = "\n".join([header, *rows]) + "\n"
    if args.out is None:
        print(text, end="")
    else:
        out = new_output(args.out, args.overwrite)
        atomic_write(out, lambda p: p.write_text(text))
    return 0


def sample_class(run_dir: str, klass: str, n: int, out: str | Path, *, seed: int = 0, mean: bool = False,
                 overwrite: bool = False) -> int:
    """Write ``n`` generated rows of class ``klass`` (.npy or .csv)."""
    from vaekit.apps.semisupervised.estimator import SemiSupervisedClassifier

    out = Path(out)
    if out.suffix not in (".npy", ".csv"):
        raise ValueError(f"--out {out} must end in .npy or .csv.")
    new_output(out, overwrite)
    if int(n) < 0:
        raise ValueError(f"-n must be 0 or more, got {n}.")
    clf = SemiSupervisedClassifier.load(run_dir)
    known = {str(c): c for c in clf.classes_.tolist()}
    if str(klass) not in known:
        raise ValueError(f"--class {klass} is not a class of this model; choose one of {', '.join(known)}.")
    if int(n) == 0:
        print("nothing to do: -n 0 asks for no samples")
        return 0
    X = clf.sample(int(n), y=known[str(klass)], mean=mean, random_state=seed)
    if hasattr(X, "to_csv"):  # a model of a table generates rows with its columns
        if out.suffix != ".csv":
            raise ValueError(f"--out {out}: this model generates table rows (named, mixed columns); write them to a "
                             ".csv file.")
        atomic_write(out, lambda p: X.to_csv(p, index=False))
    elif out.suffix == ".npy":
        atomic_write(out, lambda p: np.save(p, X))
    else:
        atomic_write(out, lambda p: np.savetxt(p, X.reshape(len(X), -1), delimiter=",", fmt="%.6g"))
    print(f"wrote {len(X)} samples of class {klass} to {out}")
    return 0


def sample(args) -> int:
    return sample_class(args.run_dir, args.klass, args.n, args.out, seed=args.seed, mean=args.mean,
                        overwrite=args.overwrite)


def add_commands(subparsers) -> None:
    """Register ``ssl-train``, ``predict`` and ``ssl-sample`` on an argparse subparsers object."""
    p = command(subparsers, "ssl-train", train, "Train a semi-supervised classifier (M2 or M1+M2).",
                "  vaekit ssl-train data.csv --labels digit --method m1+m2 --out runs/ssl\n"
                "  vaekit ssl-train x.npy --labels y.npy --out runs/ssl --set epochs=100",
                description="Train a classifier from a few labelled and many unlabelled rows (-1 marks an "
                            "unlabelled row) and save it, with a class-conditional generator, to --out.")
    p.add_argument("data", help=".npy, .npz, .csv or .parquet")
    p.add_argument("--labels", required=True, help="label file (.npy/.csv/.txt) or column of DATA; -1 = unlabelled")
    p.add_argument("--out", required=True, help="directory to create")
    p.add_argument("--method", choices=("m2", "m1+m2"), default=None, help="m1+m2 (default) or m2")
    p.add_argument("--latent-dim", type=int, default=None)
    p.add_argument("--hidden", default=None,
                   help="comma-separated MLP widths (default: 64 for a table, 512,256 otherwise)")
    p.add_argument("--epochs", type=int, default=None, help="default 100")
    p.add_argument("--m1-epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="default 128")
    p.add_argument("--lr", type=float, default=None, help="default 1e-3")
    p.add_argument("--alpha", type=float, default=None, help="classification weight (default 0.1 N)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda")
    p.add_argument("--seed", type=int, default=None)
    add_settings(p, "ssl")
    add_overwrite(p, "a saved model in --out")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)  # progress is on by default now

    p = command(subparsers, "predict", predict, "Predict classes with a semi-supervised model.",
                "  vaekit predict runs/ssl new.csv --proba --out predictions.csv")
    p.add_argument("run_dir")
    p.add_argument("data")
    p.add_argument("--out", default=None, help="CSV file (default: stdout)")
    p.add_argument("--proba", action="store_true", help="also write class probabilities q(y|x)")
    add_overwrite(p, "--out")

    p = command(subparsers, "ssl-sample", sample, "Generate examples of one class.",
                "  vaekit ssl-sample runs/ssl --class 7 -n 64 --out sevens.npy")
    p.add_argument("run_dir")
    p.add_argument("--class", dest="klass", required=True, help="class label to generate")
    p.add_argument("-n", type=int, default=64)
    p.add_argument("--out", required=True, help=".npy or .csv")
    p.add_argument("--mean", action="store_true", help="decoded means E[x|y,z] instead of samples")
    p.add_argument("--seed", type=int, default=0)
    add_overwrite(p, "--out")
