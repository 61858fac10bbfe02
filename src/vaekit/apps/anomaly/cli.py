"""``vaekit detect fit`` and ``vaekit detect score``: anomaly detection from the command line.

    vaekit detect fit train.csv --out detector/              # a table, or a series with a timestamp column
    vaekit detect score detector/ new.csv --out scores.csv   # score + 0/1 flag per row, and scores.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vaekit.atomic import atomic_write
from vaekit.cli_common import UserError, add_overwrite, add_settings, command, new_output, settings

SCORES = ("nll", "elbo", "recon_prob", "recon_error")


def read_table(path: str):
    """A table through ``vaekit.data``'s readers (CSV, Parquet, .npy/.npz arrays become numbered columns)."""
    import pandas as pd

    from vaekit.data.readers import read_source

    x = read_source(Path(path)).x
    return x if isinstance(x, pd.DataFrame) else pd.DataFrame(
        x.reshape(len(x), -1), columns=[str(i) for i in range(x.reshape(len(x), -1).shape[1])])


def split_names(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def drop_columns(frame, names: list[str], *, required: bool):
    missing = [c for c in names if c not in frame.columns]
    if missing and required:
        raise UserError(f"Columns {missing} are not in the data; its columns are {list(frame.columns)[:10]}.")
    return frame.drop(columns=[c for c in names if c in frame.columns])


def load_detector(path: str):
    """Load whichever detector ``vaekit detect fit`` saved in ``path``."""
    from vaekit.loading import load

    det = load(path)
    if type(det).__name__ not in ("AnomalyDetector", "TimeSeriesDetector"):
        raise UserError(f"{path} holds a model but not an anomaly detector; make one with `vaekit detect fit`.")
    return det


def run_fit(args) -> int:
    from vaekit.apps.anomaly.detector import AnomalyDetector
    from vaekit.apps.anomaly.timeseries import TimeSeriesDetector

    out = Path(args.out)
    if (out / "config.json").exists() and not args.overwrite:
        raise UserError(f"{out} already holds a saved model; choose another --out or pass --overwrite.")
    frame = drop_columns(read_table(args.data), split_names(args.ignore), required=True)
    if args.kind == "series" and args.timestamp not in frame.columns and args.timestamp != "timestamp":
        raise UserError(f"--timestamp {args.timestamp!r} is not a column of {args.data} (its columns are "
                        f"{list(frame.columns)[:8]}); name the time column.")
    if args.kind == "auto" and args.timestamp != "timestamp" and args.timestamp not in frame.columns:
        raise UserError(f"--timestamp {args.timestamp!r} is not a column of {args.data} (its columns are "
                        f"{list(frame.columns)[:8]}); name the time column, or leave --timestamp out for a table.")
    series = args.kind == "series" or (args.kind == "auto" and args.timestamp in frame.columns)
    given = {"latent_dim": args.latent_dim, "epochs": args.epochs, "random_state": args.seed,
             "verbose": 0 if args.quiet else 1, "scoring": args.scoring, "contamination": args.contamination}
    notes = {"ignore": split_names(args.ignore), "labels": args.labels}
    labels = None
    import time

    t0 = time.perf_counter()
    if series:
        if args.labels:
            if args.labels not in frame.columns:
                raise UserError(f"--labels {args.labels!r} is not a column of {args.data}.")
            labels = frame[args.labels].fillna(0).to_numpy()
            frame = frame.drop(columns=[args.labels])
        params = settings(args, TimeSeriesDetector, given={**given, "window": args.window, "timestamp": args.timestamp})
        det = TimeSeriesDetector(**params).fit(frame, labels=labels)
        what = f"time series of {len(frame)} points, metrics {det.metrics_}, window {det.window}"
    else:
        if args.labels:
            raise UserError("--labels is for time series; for a table, leave label columns out with --ignore.")
        params = settings(args, AnomalyDetector, given={**given, "categorical": tuple(split_names(args.categorical))})
        det = AnomalyDetector(**params).fit(frame)
        what = f"table of {len(frame)} rows, {len(det.feature_names_)} modelled features"
    seconds = time.perf_counter() - t0
    det.notes_ = notes
    det.save(out, overwrite=args.overwrite)
    from vaekit.apps.anomaly.report import write_detector_report

    report = write_detector_report(det, out, data=args.data, frame=frame, labels=labels, seconds=seconds)
    print(f"fitted a detector on a {what}; scoring {det.scoring!r}, threshold {det.threshold_:.4g}; saved to {out} "
          f"(open {report})")
    return 0


def run_score(args) -> int:
    import pandas as pd

    from vaekit.apps.anomaly.plot import plot_series, plot_table
    from vaekit.apps.anomaly.timeseries import TimeSeriesDetector, read_series

    det = load_detector(args.model_dir)
    out = new_output(args.out, args.overwrite)
    plot = None if args.no_plot else new_output(args.plot or out.with_suffix(".png"), args.overwrite)
    frame = read_table(args.data)
    notes = getattr(det, "notes_", {})
    label_col = notes.get("labels")
    known = frame[label_col].fillna(0).to_numpy() if label_col and label_col in frame.columns else None
    frame = drop_columns(frame, notes.get("ignore", []) + ([notes["labels"]] if notes.get("labels") else []),
                         required=False)
    unit = "squared error" if det.scoring == "recon_error" else "nats"
    if isinstance(det, TimeSeriesDetector):
        values, times = read_series(frame, timestamp=det.timestamp, name=args.data)
        scores = det.decision_function(frame)
        flags = (scores > det.threshold_).astype(int)
        result = pd.DataFrame({times.name or "timestamp": times, "score": scores, "flag": flags})
        if plot is not None:
            plot_series(times, values, scores, det.threshold_, plot, unit=unit, labels=known)
    else:
        s, c = det._score_array(det._model_array(frame, name=args.data))
        flags = (s > det.threshold_).astype(int)
        top = [det.feature_names_[i] for i in c.argmax(1)]
        result = pd.DataFrame({"row": range(len(s)), "score": s, "flag": flags, "top_feature": top})
        if plot is not None:
            plot_table(s, det.threshold_, plot, unit=unit)
    atomic_write(out, lambda p: result.to_csv(p, index=False))
    print(f"scored {len(result)} {'timestamps' if isinstance(det, TimeSeriesDetector) else 'rows'}: "
          f"{int(result['flag'].sum())} flagged (threshold {det.threshold_:.4g}); wrote {out}"
          + (f" and {plot}" if plot is not None else ""))
    return 0


def add_commands(subparsers) -> None:
    """Register ``detect fit`` and ``detect score`` on an argparse subparsers object."""
    detect = subparsers.add_parser("detect", help="Anomaly detection on tables and time series.",
                                   description="Anomaly detection on tables and time series: fit a detector on "
                                               "mostly normal data, then score new rows.")
    sub = detect.add_subparsers(dest="detect_command", required=True, metavar="{fit,score}")
    f = command(sub, "fit", run_fit, "Fit a detector on (mostly normal) data and save it.",
                "  vaekit detect fit train.csv --out detector/\n"
                "  vaekit detect fit metrics.csv --out ts/ --window 60 --labels is_anomaly\n"
                "  vaekit detect fit train.csv --out detector/ --set steps=2000 --set trim=0.1")
    f.add_argument("data", help="CSV or Parquet: a table, or a time series with a timestamp column")
    f.add_argument("--out", required=True, help="directory for the fitted detector")
    f.add_argument("--kind", choices=("auto", "table", "series"), default="auto",
                   help="auto: a time series when the timestamp column exists")
    f.add_argument("--timestamp", default="timestamp", help="name of the timestamp column (default: timestamp)")
    f.add_argument("--window", type=int, default=None, help="time steps per window (time series; default 60)")
    f.add_argument("--labels", default="", help="0/1 column of known anomalies, masked out of training (time series)")
    f.add_argument("--ignore", default="", help="comma-separated columns to leave out (ids, labels)")
    f.add_argument("--categorical", default="", help="comma-separated categorical columns (tables)")
    f.add_argument("--scoring", "--score", dest="scoring", choices=SCORES, default=None,
                   help="nll (tables) or recon_prob (series) by default (--score is the old name)")
    f.add_argument("--contamination", type=float, default=None, help="expected outlier fraction (0.1 / 0.01)")
    f.add_argument("--latent-dim", type=int, default=None)
    f.add_argument("--epochs", type=lambda v: v if v == "auto" else int(v), default=None,
                   help="passes over the data, or auto (default)")
    f.add_argument("--seed", type=int, default=None)
    f.add_argument("--quiet", action="store_true", help="no progress lines")
    f.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)  # progress is on by default now
    add_settings(f, "detector")
    add_overwrite(f, "a detector already in --out")
    s = command(sub, "score", run_score, "Score new data with a fitted detector: a score and 0/1 flag per row.",
                "  vaekit detect score detector/ new.csv --out scores.csv")
    s.add_argument("model_dir")
    s.add_argument("data")
    s.add_argument("--out", required=True, help="CSV of scores and flags")
    s.add_argument("--plot", default=None, help="PNG path (default: --out with .png)")
    s.add_argument("--no-plot", action="store_true")
    add_overwrite(s, "--out and the plot")
