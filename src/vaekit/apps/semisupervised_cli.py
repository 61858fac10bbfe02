"""Command line for semi-supervised learning: ``ssl-train``, ``predict`` and ``ssl-sample``.

    vaekit ssl-train DATA --labels FILE_OR_COLUMN --out RUN_DIR [--method m2|m1+m2]
    vaekit predict RUN_DIR DATA [--out FILE.csv] [--proba]
    vaekit ssl-sample RUN_DIR --class K -n 64 --out FILE.npy|.csv

DATA is .npy, .npz (array ``x``/``X`` or the only one), .csv or .parquet (numeric columns).
Labels: a file (.npy, .csv or .txt, one per row) or a column of a .csv/.parquet DATA; -1, an empty
cell or NaN marks an unlabelled row. Handlers raise ValueError/FileNotFoundError for user errors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vaekit.io import atomic_write


def read_table(path: Path):
    import pandas as pd
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def load_data(path: str, *, drop: str | None = None) -> np.ndarray:
    """Rows of numeric features from .npy/.npz/.csv/.parquet; ``drop`` removes a label column."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"Data file {p} does not exist.")
    if p.suffix == ".npy":
        return np.load(p, allow_pickle=False)
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            keys = [k for k in ("x", "X") if k in z] or list(z.keys())
            if len(keys) != 1 and not any(k in z for k in ("x", "X")):
                raise ValueError(f"{p} holds arrays {list(z.keys())}; store the data under the key 'x'.")
            return z[keys[0]]
    if p.suffix in (".csv", ".parquet"):
        table = read_table(p)
        return table.drop(columns=[drop]) if drop is not None and drop in table.columns else table
    raise ValueError(f"Unsupported data format {p.suffix!r} for {p}; use .npy, .npz, .csv or .parquet.")


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


def refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise ValueError(f"{path} already exists; choose another path or pass --force to overwrite it.")


def write_atomic(path: Path, write) -> None:
    atomic_write(path, write)


def train(args) -> int:
    from vaekit.apps.semisupervised_estimator import SemiSupervisedClassifier
    out = Path(args.out)
    refuse_overwrite(out / "config.json", args.force)
    X = load_data(args.data, drop=args.labels)
    y = load_labels(args.labels, args.data, len(X))
    hidden = tuple(int(h) for h in args.hidden.split(","))
    clf = SemiSupervisedClassifier(args.method, args.latent_dim, hidden=hidden, epochs=args.epochs,
                                   m1_epochs=args.m1_epochs, batch_size=args.batch_size, lr=args.lr,
                                   alpha=args.alpha, device=args.device, random_state=args.seed,
                                   verbose=int(args.verbose)).fit(X, y)
    clf.save(out)
    n_lab = int((y != -1).sum())
    print(f"trained {args.method} on {len(y)} rows ({n_lab} labelled, {len(clf.classes_)} classes); saved to {out}")
    return 0


def predict(args) -> int:
    from vaekit.apps.semisupervised_estimator import SemiSupervisedClassifier
    clf = SemiSupervisedClassifier.load(args.run_dir)
    X = load_data(args.data)
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
        out = Path(args.out)
        refuse_overwrite(out, args.force)
        write_atomic(out, lambda p: p.write_text(text))
    return 0


def sample(args) -> int:
    from vaekit.apps.semisupervised_estimator import SemiSupervisedClassifier
    out = Path(args.out)
    if out.suffix not in (".npy", ".csv"):
        raise ValueError(f"--out {out} must end in .npy or .csv.")
    refuse_overwrite(out, args.force)
    clf = SemiSupervisedClassifier.load(args.run_dir)
    known = {str(c): c for c in clf.classes_.tolist()}
    if args.klass not in known:
        raise ValueError(f"--class {args.klass} is not a class of this model; choose one of {', '.join(known)}.")
    X = clf.sample(args.n, y=known[args.klass], mean=args.mean, random_state=args.seed)
    if out.suffix == ".npy":
        write_atomic(out, lambda p: np.save(p, X))
    else:
        write_atomic(out, lambda p: np.savetxt(p, X.reshape(len(X), -1), delimiter=",", fmt="%.6g"))
    print(f"wrote {len(X)} samples of class {args.klass} to {out}")
    return 0


def add_commands(subparsers) -> None:
    """Register ``ssl-train``, ``predict`` and ``ssl-sample`` on an argparse subparsers object."""
    p = subparsers.add_parser("ssl-train", help="train a semi-supervised classifier (M2 or M1+M2)",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("data", help=".npy, .npz, .csv or .parquet")
    p.add_argument("--labels", required=True, help="label file (.npy/.csv/.txt) or column of DATA; -1 = unlabelled")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--method", choices=("m2", "m1+m2"), default="m2")
    p.add_argument("--latent-dim", type=int, default=16)
    p.add_argument("--hidden", default="512,256", help="comma-separated MLP widths")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--m1-epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--alpha", type=float, default=None, help="classification weight (default 0.1 N)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=train)

    p = subparsers.add_parser("predict", help="predict classes with a semi-supervised run directory")
    p.add_argument("run_dir")
    p.add_argument("data")
    p.add_argument("--out", default=None, help="CSV file (default: stdout)")
    p.add_argument("--proba", action="store_true", help="also write class probabilities q(y|x)")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=predict)

    p = subparsers.add_parser("ssl-sample", help="generate examples of one class")
    p.add_argument("run_dir")
    p.add_argument("--class", dest="klass", required=True, help="class label to generate")
    p.add_argument("-n", type=int, default=64)
    p.add_argument("--out", required=True, help=".npy or .csv")
    p.add_argument("--mean", action="store_true", help="decoded means E[x|y,z] instead of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=sample)
