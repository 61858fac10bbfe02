"""``vaekit detect fit`` and ``vaekit detect score``: anomaly detection from the command line.

    vaekit detect fit train.csv --out detector/              # a table, or a series with a timestamp column
    vaekit detect score detector/ new.csv --out scores.csv   # score + 0/1 flag per row, and scores.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from vaekit.apps.anomaly import AnomalyDetector
from vaekit.apps.anomaly_plot import plot_series, plot_table
from vaekit.apps.anomaly_scores import SCORES
from vaekit.apps.anomaly_table import to_model_array
from vaekit.apps.anomaly_timeseries import TimeSeriesDetector, read_series
from vaekit.io import atomic_write


def read_table(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No data file at {p}; pass a CSV or Parquet file.")
    try:
        return pd.read_parquet(p) if p.suffix in (".parquet", ".pq") else pd.read_csv(p)
    except (ValueError, OSError, pd.errors.ParserError) as e:
        raise ValueError(f"Could not read {p} as {'Parquet' if p.suffix in ('.parquet', '.pq') else 'CSV'} ({e}).") from None


def split_names(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def drop_columns(frame: pd.DataFrame, names: list[str], *, required: bool) -> pd.DataFrame:
    missing = [c for c in names if c not in frame.columns]
    if missing and required:
        raise ValueError(f"Columns {missing} are not in the data; its columns are {list(frame.columns)[:10]}.")
    return frame.drop(columns=[c for c in names if c in frame.columns])


def load_detector(path: str) -> AnomalyDetector | TimeSeriesDetector:
    """Load whichever detector ``vaekit detect fit`` saved in ``path``."""
    config = Path(path) / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"No detector at {path}: expected a directory made by `vaekit detect fit`.")
    try:
        kind = json.loads(config.read_text()).get("extra", {}).get("estimator")
    except json.JSONDecodeError as e:
        raise ValueError(f"{config} is damaged (not valid JSON: {e}); fit the detector again.") from None
    if kind == "TimeSeriesDetector":
        return TimeSeriesDetector.load(path)
    if kind == "AnomalyDetector":
        return AnomalyDetector.load(path)
    raise ValueError(f"{path} holds a model but not an anomaly detector; make one with `vaekit detect fit`.")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda p: frame.to_csv(p, index=False))


def check_new(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise ValueError(f"{path} already exists; choose another path or pass --overwrite.")


def run_fit(args) -> int:
    frame = read_table(args.data)
    frame = drop_columns(frame, split_names(args.ignore), required=True)
    series = args.kind == "series" or (args.kind == "auto" and args.timestamp in frame.columns)
    out = Path(args.out)
    if (out / "config.json").exists() and not args.overwrite:
        raise ValueError(f"{out} already holds a saved model; choose another --out or pass --overwrite.")
    common = {"latent_dim": args.latent_dim, "epochs": args.epochs if args.epochs == "auto" else int(args.epochs),
                  "random_state": args.seed, "verbose": int(args.verbose)}
    notes = {"ignore": split_names(args.ignore), "labels": args.labels}
    if series:
        labels = None
        if args.labels:
            labels = frame[args.labels].fillna(0).to_numpy() if args.labels in frame.columns else None
            if labels is None:
                raise ValueError(f"--labels {args.labels!r} is not a column of {args.data}.")
            frame = frame.drop(columns=[args.labels])
        det = TimeSeriesDetector(window=args.window, score=args.score or "recon_prob",
                                 contamination=args.contamination or 0.01, timestamp=args.timestamp, **common)
        det.fit(frame, labels=labels)
        what = f"time series of {len(frame)} points, metrics {det.metrics_}, window {det.window}"
    else:
        if args.labels:
            raise ValueError("--labels is for time series; for a table, leave label columns out with --ignore.")
        det = AnomalyDetector(score=args.score or "nll", contamination=args.contamination or 0.1,
                              categorical=tuple(split_names(args.categorical)), **common)
        det.fit(frame)
        what = f"table of {len(frame)} rows, {len(det.feature_names_)} modelled features"
    det.save(out, overwrite=args.overwrite, notes=notes)
    print(f"fitted a detector on a {what}; score {det.score!r}, threshold {det.threshold_:.4g}; saved to {out}")
    return 0


def run_score(args) -> int:
    det = load_detector(args.model_dir)
    out = Path(args.out)
    plot = None if args.no_plot else Path(args.plot or out.with_suffix(".png"))
    for p in (out, plot):
        if p is not None:
            check_new(p, args.overwrite)
    frame = read_table(args.data)
    notes = getattr(det, "notes_", {})
    label_col = notes.get("labels")
    known = frame[label_col].fillna(0).to_numpy() if label_col and label_col in frame.columns else None
    frame = drop_columns(frame, notes.get("ignore", []) + ([notes["labels"]] if notes.get("labels") else []),
                         required=False)
    unit = "squared error" if det.score == "recon_error" else "nats"
    if isinstance(det, TimeSeriesDetector):
        values, times = read_series(frame, timestamp=det.timestamp, name=args.data)
        scores = det.decision_function(frame)
        flags = (scores > det.threshold_).astype(int)
        result = pd.DataFrame({times.name or "timestamp": times, "score": scores, "flag": flags})
        if plot is not None:
            plot_series(times, values, scores, det.threshold_, plot, unit=unit, labels=known)
    else:
        s, c = det._score_array(to_model_array(det.layout_, frame, name=args.data))
        flags = (s > det.threshold_).astype(int)
        top = [det.feature_names_[i] for i in c.argmax(1)]
        result = pd.DataFrame({"row": range(len(s)), "score": s, "flag": flags, "top_feature": top})
        if plot is not None:
            plot_table(s, det.threshold_, plot, unit=unit)
    write_csv(result, out)
    print(f"scored {len(result)} {'timestamps' if isinstance(det, TimeSeriesDetector) else 'rows'}: "
          f"{int(result['flag'].sum())} flagged (threshold {det.threshold_:.4g}); wrote {out}"
          + (f" and {plot}" if plot is not None else ""))
    return 0


def add_commands(subparsers) -> None:
    """Register ``detect fit`` and ``detect score`` on an argparse subparsers object."""
    detect = subparsers.add_parser("detect", help="anomaly detection on tables and time series")
    sub = detect.add_subparsers(dest="detect_command", required=True, metavar="{fit,score}")
    f = sub.add_parser("fit", help="fit a detector on (mostly normal) data and save it")
    f.add_argument("data", help="CSV or Parquet: a table, or a time series with a timestamp column")
    f.add_argument("--out", required=True, help="directory for the fitted detector")
    f.add_argument("--kind", choices=("auto", "table", "series"), default="auto",
                   help="auto: a time series when the timestamp column exists")
    f.add_argument("--timestamp", default="timestamp", help="name of the timestamp column")
    f.add_argument("--window", type=int, default=60, help="time steps per window (time series)")
    f.add_argument("--labels", default="", help="0/1 column of known anomalies, masked out of training (time series)")
    f.add_argument("--ignore", default="", help="comma-separated columns to leave out (ids, labels)")
    f.add_argument("--categorical", default="", help="comma-separated categorical columns (tables)")
    f.add_argument("--score", choices=SCORES, default=None, help="nll (tables) or recon_prob (series) by default")
    f.add_argument("--contamination", type=float, default=None, help="expected outlier fraction (0.1 / 0.01)")
    f.add_argument("--latent-dim", type=int, default=8)
    f.add_argument("--epochs", default="auto")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--verbose", action="store_true")
    f.add_argument("--overwrite", action="store_true", help="replace a detector already in --out")
    f.set_defaults(func=run_fit)
    s = sub.add_parser("score", help="score new data with a fitted detector: a score and 0/1 flag per row")
    s.add_argument("model_dir")
    s.add_argument("data")
    s.add_argument("--out", required=True, help="CSV of scores and flags")
    s.add_argument("--plot", default=None, help="PNG path (default: --out with .png)")
    s.add_argument("--no-plot", action="store_true")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=run_score)


def main(argv=None) -> int:
    """Stand-alone entry point (``python -m vaekit.apps.anomaly_cli detect ...``)."""
    import sys

    parser = argparse.ArgumentParser(prog="vaekit")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
