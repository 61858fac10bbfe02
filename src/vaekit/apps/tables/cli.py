"""``vaekit synth fit|sample|report``: synthetic tables from the command line.

    vaekit synth fit table.csv --out syn/                         # progress, then syn/report.html
    vaekit synth sample syn/ -n 10000 --out fake.csv --where income='>50K'
    vaekit synth report real.csv fake.csv --out report.html [--holdout test.csv --target income]
"""

from __future__ import annotations

import math
from pathlib import Path

from vaekit.cli_common import UserError, add_overwrite, add_settings, command, new_output, settings


def split_names(text: str) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def read_frame(path: str, dates: list[str] = ()):
    """A CSV (or Parquet) file as a data frame; ``dates`` columns parsed as datetimes."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise UserError(f"{path} does not exist; check the path.")
    try:
        frame = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p, skipinitialspace=True)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UserError(f"Cannot read {path} as a table ({e}).") from None
    for c in dates:
        if c not in frame.columns:
            raise UserError(f"--dates names {c!r}, which is not a column of {path}.")
        try:
            frame[c] = pd.to_datetime(frame[c])
        except (TypeError, ValueError):
            raise UserError(f"Column {c!r} of {path} is not all dates; leave it out of --dates.") from None
    return frame


def write_frame(frame, out: Path) -> None:
    from vaekit.atomic import atomic_write

    atomic_write(out, lambda p: frame.to_parquet(p) if out.suffix == ".parquet" else frame.to_csv(p, index=False))


def run_fit(args) -> int:
    from vaekit.apps.tables.quality import quality_report
    from vaekit.apps.tables.synthesizer import TabularSynthesizer

    out = Path(args.out)
    if (out / "config.json").exists() and not args.overwrite:
        raise UserError(f"{out} already holds a saved model; choose another --out or pass --overwrite.")
    frame = read_frame(args.data, split_names(args.dates))
    ids = split_names(args.id_columns)
    given = {"steps": args.steps, "max_seconds": args.max_seconds, "random_state": args.seed,
             "verbose": 0 if args.quiet else 1, "categorical": tuple(split_names(args.categorical)) or None,
             "id_columns": tuple(ids) if ids else None}
    syn = TabularSynthesizer(**settings(args, TabularSynthesizer, given=given)).fit(frame)
    syn.save(out, overwrite=args.overwrite)
    print(f"fitted a synthesizer on {len(frame)} rows x {frame.shape[1]} columns in {syn.fit_seconds_:.0f} s; "
          f"saved to {out}")
    if not args.no_report:
        fake = syn.sample(len(frame), random_state=0)
        report = quality_report(frame.drop(columns=syn.id_columns_), fake.drop(columns=syn.id_columns_))
        report.to_html(out / "report.html", title=f"Synthetic data quality: {Path(args.data).name}")
        pairs = report.value("column pair trends")
        pairs = "none (no related pair of columns in the real table)" if math.isnan(pairs) else f"{pairs:.3f}"
        print(f"quality score {report.score:.3f} (column shapes {report.value('column shapes'):.3f}, column pair "
              f"trends {pairs}) on {len(fake)} sampled rows; wrote {out / 'report.html'}")
    return 0


def parse_where(items: list[str]) -> dict | None:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--where {item!r} needs the form column=value, e.g. --where income='>50K'.")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out or None


def run_sample(args) -> int:
    from vaekit.loading import load

    out = new_output(args.out, args.overwrite)
    if not Path(args.model_dir, "config.json").exists():
        raise UserError(f"{args.model_dir} holds no saved synthesizer; make one with `vaekit synth fit`.")
    syn = load(args.model_dir)
    if type(syn).__name__ != "TabularSynthesizer":
        raise UserError(f"{args.model_dir} holds a model but not a synthesizer; make one with `vaekit synth fit`.")
    if args.n < 1:
        raise UserError(f"-n must be at least 1, got {args.n}.")
    fake = syn.sample(args.n, conditions=parse_where(args.where), random_state=args.seed)
    write_frame(fake, out)
    print(f"wrote {len(fake)} synthetic rows x {fake.shape[1]} columns to {out}")
    return 0


def run_report(args) -> int:
    from vaekit.apps.tables.quality import quality_report

    out = new_output(args.out, args.overwrite)
    dates = split_names(args.dates)
    real, fake = read_frame(args.real, dates), read_frame(args.synthetic, dates)
    holdout = read_frame(args.holdout, dates) if args.holdout else None
    if args.target and holdout is None:
        raise UserError("--target needs --holdout (held-out real rows to test the classifiers on).")
    ignore = split_names(args.ignore)
    if ignore:
        real, fake = real.drop(columns=ignore, errors="ignore"), fake.drop(columns=ignore, errors="ignore")
        holdout = holdout.drop(columns=ignore, errors="ignore") if holdout is not None else None
    report = quality_report(real, fake, holdout=holdout, target=args.target or None)
    report.to_html(out, title=f"Synthetic data quality: {Path(args.synthetic).name} against {Path(args.real).name}")
    for _, row in report.summary.iterrows():
        print(f"{row['measure']}: {row['value']:.4g}")
    print(f"wrote {out}")
    return 0


def add_commands(subparsers) -> None:
    """Register ``synth fit``, ``synth sample`` and ``synth report`` on an argparse subparsers object."""
    synth = subparsers.add_parser("synth", help="Synthetic tables: fit a synthesizer, sample rows, report quality.",
                                  description="Synthetic tables: fit a synthesizer on a table, sample new rows "
                                              "(optionally with fixed values), and compare real and synthetic tables.")
    sub = synth.add_subparsers(dest="synth_command", required=True, metavar="{fit,sample,report}")
    f = command(sub, "fit", run_fit, "Fit a synthesizer on a table (CSV or Parquet) and save it.",
                "  vaekit synth fit table.csv --out syn/\n"
                "  vaekit synth fit table.csv --out syn/ --max-seconds 120 --dates signup_date\n"
                "  vaekit synth fit table.csv --out syn/ --set components=5 --set latent_dim=16")
    f.add_argument("data", help="CSV or Parquet table")
    f.add_argument("--out", required=True, help="directory for the synthesizer (and report.html)")
    f.add_argument("--steps", type=int, default=None, help="the most gradient steps (default 2000; a table under "
                   "10,000 rows trains for 100 passes over its rows, at least 300 steps)")
    f.add_argument("--max-seconds", type=float, default=None, help="stop training after this many seconds")
    f.add_argument("--dates", default="", help="comma-separated columns to read as dates")
    f.add_argument("--categorical", default="", help="comma-separated numeric columns to treat as categories")
    f.add_argument("--id-columns", default="", help="comma-separated ID columns (default: detected)")
    f.add_argument("--seed", type=int, default=None)
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.add_argument("--no-report", action="store_true", help="skip the quality report on a fresh sample")
    add_settings(f, "synth")
    add_overwrite(f, "a synthesizer already in --out")
    s = command(sub, "sample", run_sample, "Sample synthetic rows from a fitted synthesizer.",
                "  vaekit synth sample syn/ -n 10000 --out fake.csv\n"
                "  vaekit synth sample syn/ -n 500 --out rich.csv --where income='>50K' --seed 1")
    s.add_argument("model_dir")
    s.add_argument("-n", type=int, default=1000, help="rows to sample (default 1000)")
    s.add_argument("--out", required=True, help="CSV (or .parquet) for the rows")
    s.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE",
                   help="only rows with this value (repeatable)")
    s.add_argument("--seed", type=int, default=None, help="the same seed gives the same rows")
    add_overwrite(s, "--out")
    r = command(sub, "report", run_report, "Compare a synthetic table with the real one (HTML quality report).",
                "  vaekit synth report real.csv fake.csv --out report.html\n"
                "  vaekit synth report train.csv fake.csv --out report.html --holdout test.csv --target income")
    r.add_argument("real")
    r.add_argument("synthetic")
    r.add_argument("--out", required=True, help="HTML file")
    r.add_argument("--holdout", default="", help="held-out real rows: privacy (DCR, copies) and ML efficacy")
    r.add_argument("--target", default="", help="class column for ML efficacy (needs --holdout)")
    r.add_argument("--dates", default="", help="comma-separated columns to read as dates")
    r.add_argument("--ignore", default="", help="comma-separated columns to leave out (IDs)")
    add_overwrite(r, "--out")
