"""Anomaly detection benchmarks: ODDS (tabular, vs PyOD's VAE and IForest) and NAB (time series, vs a
rolling z-score). Each part caches its raw results as JSON; ``--part report`` writes
``benchmarks/results/anomaly.md`` (+ PNGs) from the cached parts.

    python benchmarks/anomaly.py --part odds      # 17 ODDS sets x splits x {vaekit, PyOD VAE, IForest}
    python benchmarks/anomaly.py --part nab       # NAB series: vaekit TimeSeriesDetector vs rolling z-score
    python benchmarks/anomaly.py --part report
    python benchmarks/anomaly.py --part odds --methods vaekit --splits 3 --big-splits 3 --cache /tmp/x  # subset

PyOD and its detectors are benchmark-only (``pip install vaekit[bench]``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import DATA, ROOT, cpu

ODDS = ["arrhythmia", "cardio", "glass", "ionosphere", "letter", "lympho", "mnist", "musk", "optdigits",
        "pendigits", "pima", "satellite", "satimage-2", "shuttle", "vertebral", "vowels", "wbc"]
ODDS_ROWS = {"arrhythmia": 452, "cardio": 1831, "glass": 214, "ionosphere": 351, "letter": 1600, "lympho": 148,
             "mnist": 7603, "musk": 3062, "optdigits": 5216, "pendigits": 6870, "pima": 768, "satellite": 6435,
             "satimage-2": 5803, "shuttle": 49097, "vertebral": 240, "vowels": 1456, "wbc": 378}
METHODS = ("vaekit", "pyod_vae", "iforest")


def machine() -> str:
    import platform

    import vaekit
    try:
        import pyod
        pyod_version = pyod.__version__
    except ImportError:
        pyod_version = "not installed"
    load = os.getloadavg()[0]
    return (f"{cpu()}, {os.cpu_count()} cores (shared with other jobs; load average {load:.1f} at start), "
            f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}, vaekit {vaekit.__version__}, "
            f"pyod {pyod_version}, Python {platform.python_version()}")


def odds_split(X, y, seed):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    Xtr, Xte, _, yte = train_test_split(X, y, test_size=0.4, stratify=y, random_state=seed)
    sc = StandardScaler().fit(Xtr)  # PyOD protocol: standardise on the train part
    return sc.transform(Xtr), sc.transform(Xte), yte


def make_detector(method: str, *, seed: int, steps: int, pyod_epochs: int | None, params: dict | None = None):
    if method == "vaekit":
        from vaekit.apps.anomaly import AnomalyDetector
        return AnomalyDetector(random_state=seed, **({} if steps is None else {"steps": steps}), **(params or {}))
    if method == "pyod_vae":  # as shipped; verbose=0 only silences its progress output
        from pyod.models.vae import VAE as PyodVAE
        return PyodVAE(verbose=0, random_state=seed, **({} if pyod_epochs is None else {"epoch_num": pyod_epochs}))
    if method == "ecod":
        from pyod.models.ecod import ECOD
        return ECOD()
    if method == "knn":
        from pyod.models.knn import KNN
        return KNN()
    if method == "lof":
        from pyod.models.lof import LOF
        return LOF()
    from pyod.models.iforest import IForest
    return IForest(random_state=seed)


def run_odds(args) -> dict:
    import scipy.io
    from sklearn.metrics import average_precision_score, roc_auc_score

    rows, info = [], {"machine": machine(), "command": " ".join(sys.argv), "args": vars(args)}
    names = sorted(args.datasets or ODDS, key=lambda n: ODDS_ROWS.get(n, 0))  # small first: partial runs still cover most sets
    for name in names:
        d = scipy.io.loadmat(Path(args.data) / "odds_pyod" / f"{name}.mat")
        X, y = d["X"].astype(np.float64), d["y"].ravel().astype(int)
        big = len(X) > args.big
        n_splits = args.big_splits if big else args.splits
        epochs = args.pyod_big_epochs if big and args.pyod_big_epochs else args.pyod_epochs
        for seed in range(n_splits):
            Xtr, Xte, yte = odds_split(X, y, seed)
            for method in args.methods:
                t0 = time.perf_counter()
                det = make_detector(method, seed=seed, steps=args.steps, pyod_epochs=epochs,
                                    params=json.loads(args.vaekit_params)).fit(Xtr)
                s = det.decision_function(Xte)
                rows.append({"dataset": name, "n": len(X), "d": X.shape[1], "split": seed, "method": method,
                             "roc_auc": float(roc_auc_score(yte, s)), "pr_auc": float(average_precision_score(yte, s)),
                             "seconds": time.perf_counter() - t0})
                print(json.dumps(rows[-1]), flush=True)
        save_part(args, {"rows": rows, **info})
    return {"rows": rows, **info, "complete": True}


def nab_series(data: Path):
    windows = json.loads((data / "nab" / "labels" / "combined_windows.json").read_text())
    for key in sorted(windows):
        df = pd.read_csv(data / "nab" / "data" / key)
        t = pd.to_datetime(df["timestamp"])
        labels = np.zeros(len(df), int)
        for start, stop in windows[key]:
            labels[(t >= pd.Timestamp(start)) & (t <= pd.Timestamp(stop))] = 1
        yield key, df, labels


def rolling_zscore(values: np.ndarray, window: int) -> np.ndarray:
    """|x_t - mean| / std over the previous ``window`` points (0 where there is no history yet)."""
    s = pd.Series(values)
    prev = s.shift(1).rolling(window, min_periods=2)
    z = (s - prev.mean()).abs() / (prev.std() + 1e-8 * (s.abs().mean() + 1e-12))
    return z.fillna(0.0).to_numpy()


def run_nab(args) -> dict:
    from vaekit.apps.anomaly import TimeSeriesDetector
    from vaekit.apps.anomaly.metrics import detection_metrics

    rows, example = [], None
    info = {"machine": machine(), "command": " ".join(sys.argv), "args": vars(args)}
    cached = Path(args.cache) / "nab.json"
    if args.resume and cached.exists():  # continue an interrupted run: keep its measured series
        old = json.loads(cached.read_text())
        rows, example = old["rows"], old.get("example")
        info["command"] = old["command"] + " (resumed with: " + " ".join(sys.argv[1:]) + ")"
    done = {r["series"] for r in rows}
    for key, df, labels in nab_series(Path(args.data)):
        if key in done:
            continue
        n_train = int(len(df) * args.train_fraction)  # NAB's probationary period: unlabelled training prefix
        if labels[n_train:].max() == 0:
            print(f"skip {key}: no labelled anomaly after the training prefix", flush=True)
            continue
        t0 = time.perf_counter()
        values = df[["value"]]  # positions, not timestamps: a few NAB files repeat a timestamp (DST change)
        det = TimeSeriesDetector(window=args.window, steps=args.steps).fit(values.iloc[:n_train])
        s_vae = det.decision_function(values)
        secs = time.perf_counter() - t0
        s_z = rolling_zscore(df["value"].to_numpy(np.float64), args.window)
        for method, s in (("vaekit", s_vae), ("zscore", s_z)):
            m = detection_metrics(labels[n_train:], s[n_train:])
            rows.append({"series": key, "n": len(df), "method": method, **m,
                         "seconds": secs if method == "vaekit" else 0.0})
            print(json.dumps(rows[-1]), flush=True)
        if key.endswith(args.example):
            example = {"series": key, "scores": s_vae.tolist(), "threshold": det.threshold_}
        save_part(args, {"rows": rows, "example": example, **info})
    return {"rows": rows, "example": example, **info, "complete": True}


def save_part(args, result: dict) -> None:
    """Cache a part's results so far (atomically): an interrupted run still reports what it measured."""
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    name = args.part + (f"_{args.tag}" if args.tag else "")
    tmp = Path(args.cache) / f"{name}.json.tmp"
    tmp.write_text(json.dumps(result))
    os.replace(tmp, Path(args.cache) / f"{name}.json")


def report(args) -> None:
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    parts = {p: json.loads((Path(args.cache) / f"{p}.json").read_text())
             for p in ("odds", "nab") if (Path(args.cache) / f"{p}.json").exists()}
    lines = ["# Anomaly detection benchmarks", "",
             f"Report written {datetime.datetime.now():%Y-%m-%d %H:%M} by `python benchmarks/anomaly.py --part report`.", ""]
    extra = [json.loads(f.read_text()) for f in sorted(Path(args.cache).glob("odds_*.json"))]
    if "odds" in parts:
        lines += odds_section(parts["odds"], out, extra)
    if "nab" in parts:
        lines += nab_section(parts["nab"], out, Path(args.data))
    tmp = out / "anomaly.md.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out / "anomaly.md")
    print(f"wrote {out / 'anomaly.md'}")


def vaekit_defaults(steps) -> str:
    """The settings the vaekit rows used, read from the library (so the report cannot drift from it)."""
    from vaekit.apps.anomaly import AnomalyDetector
    p = AnomalyDetector().get_params()
    if steps is not None:
        p["steps"] = steps
    return (f"score = -log p(x) importance-weighted with k={p['k']} in nats, latent {p['latent_dim']}, "
            f"hidden {p['hidden']}, about {p['steps']} gradient steps with early stopping on {p['validation_fraction']:.0%} "
            f"of the train part, trimmed likelihood trim={p['trim']!r} (that fraction of each training batch, the "
            "rows with the lowest ELBO, left out of the loss; chosen on splits 100 and 101, not the reported ones)")


def odds_section(part: dict, out: Path, extra: list[dict]) -> list[str]:
    """The main run's table; ``extra`` runs (other settings, e.g. for a set the main run did not reach)
    replace the main run's rows for the datasets they cover, and their commands are listed."""
    df = pd.DataFrame(part["rows"])
    for e in extra:
        covered = {r["dataset"] for r in e["rows"]}
        df = pd.concat([df[~df.dataset.isin(covered)], pd.DataFrame(e["rows"])], ignore_index=True)
    methods = ["vaekit", "pyod_vae", "iforest"]
    mean = df.groupby(["dataset", "method"])[["roc_auc", "pr_auc", "seconds"]].mean().unstack("method")
    splits = df[df.method == "vaekit"].groupby("dataset").split.nunique()
    a = part["args"]
    lines = ["## ODDS (tabular): vaekit `AnomalyDetector` vs PyOD VAE vs PyOD IForest", "",
             f"Command: `{part['command']}`  ", f"Machine: {part['machine']}", "",
             "Protocol (PyOD's): stratified 60/40 train/test split, features standardised on the train part, "
             "detectors fitted on the (unlabelled, contaminated) train part and scored on the test part; "
             + ("one split (random_state 0) per set" if a["splits"] == a["big_splits"] == 1 else
                f"splits = random_state 0..{a['splits'] - 1} for sets with <= {a['big']} rows, "
                f"0..{a['big_splits'] - 1} for larger sets")
             + (" (PyOD's 10)" if a["splits"] == a["big_splits"] == 10 else
                ": fewer than PyOD's 10 splits")
             + ". vaekit: `AnomalyDetector(" + ", ".join(
                 ([] if a["steps"] is None else [f"steps={a['steps']}"])
                 + [f"{k}={v!r}" for k, v in json.loads(a.get("vaekit_params", "{}")).items()]) + ")`, "
             + ("library defaults" if a["steps"] is None and a.get("vaekit_params", "{}") == "{}"
                else "all other settings default")
             + (", precision='auto' as on a CPU without bf16 hardware (--no-bf16-hardware)"
                if a.get("no_bf16_hardware") else "")
             + f" ({vaekit_defaults(a['steps'])}). PyOD VAE: as shipped "
             + ("(defaults" if a["pyod_epochs"] is None else f"(defaults except epoch_num={a['pyod_epochs']}")
             + "; its KL is clamped to capacity 0, so it is in effect a noisy autoencoder scored by reconstruction "
             "distance"
             + ("" if not a.get("pyod_big_epochs") else f"; epoch_num={a['pyod_big_epochs']} instead of 30 "
                f"on the sets above {a['big']} rows, for time")
             + "). "
             "IForest: PyOD defaults.", ""]
    for e in extra:
        ea = e["args"]
        sets = sorted({r["dataset"] for r in e["rows"]})
        epochs = ea.get("pyod_big_epochs") or ea.get("pyod_epochs")
        lines += [f"Rows for {', '.join(sets)} come from a separate run"
                  + (f" ({ea['note']})" if ea.get("note") else "") + f": `{e['command']}` ({e['machine']}); "
                  + ("PyOD VAE as shipped" if epochs is None else f"PyOD VAE epoch_num={epochs} (not 30) for time")
                  + ", vaekit " + ("library defaults" if ea.get("steps") is None else f"steps={ea['steps']}") + ".", ""]
    lines += [
             "| dataset | n | d | splits | ROC vaekit | ROC PyOD VAE | ROC IForest | PR vaekit | PR PyOD VAE | PR IForest | s/fit vaekit | s/fit PyOD VAE |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    info = df.groupby("dataset")[["n", "d"]].first()
    for name in mean.index:
        r = mean.loc[name]
        roc = [r[("roc_auc", m)] for m in methods]
        best = max(roc)
        cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in roc]
        lines.append(f"| {name} | {info.loc[name, 'n']} | {info.loc[name, 'd']} | {splits[name]} | " + " | ".join(cells)
                     + " | " + " | ".join(f"{r[('pr_auc', m)]:.3f}" for m in methods)
                     + f" | {r[('seconds', 'vaekit')]:.1f} | {r[('seconds', 'pyod_vae')]:.1f} |")
    m = mean.mean()
    lines.append(f"| **mean ({len(mean)} sets)** | | | | " + " | ".join(f"**{m[('roc_auc', k)]:.3f}**" for k in methods)
                 + " | " + " | ".join(f"**{m[('pr_auc', k)]:.3f}**" for k in methods) + " | | |")
    wins = {k: int((mean[("roc_auc", "vaekit")] > mean[("roc_auc", k)]).sum()) for k in methods[1:]}
    done = set(mean.index)
    missing = [n for n in ODDS if n not in done]
    if missing:
        lines += ["", (f"**Not measured** (not reached by the run; sets run smallest first): {', '.join(missing)}. "
                  f"The mean is over the {len(done)} measured sets only.")]
    lines += ["", (f"Mean ROC AUC: vaekit {m[('roc_auc', 'vaekit')]:.3f}, PyOD VAE {m[('roc_auc', 'pyod_vae')]:.3f}, "
              f"IForest {m[('roc_auc', 'iforest')]:.3f}. vaekit has the higher ROC AUC on {wins['pyod_vae']} of "
              f"{len(mean)} sets against PyOD's VAE and on {wins['iforest']} of {len(mean)} against IForest."), "",
              "Target (mean ROC AUC above PyOD's VAE and above IForest on the same splits): "
              + ("met" if m[("roc_auc", "vaekit")] > max(m[("roc_auc", "pyod_vae")], m[("roc_auc", "iforest")]) else
                 "**not met**: " + ", ".join(f"vaekit {'below' if m[('roc_auc', 'vaekit')] <= m[('roc_auc', k)] else 'above'} {k}"
                                              for k in methods[1:]))
              + (". With a single split per set this comparison carries split-to-split noise." if a["splits"] == 1
                 else "."), ""]
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(11, 3.8))
    xs = np.arange(len(mean))
    for i, k in enumerate(methods):
        ax.bar(xs + (i - 1) * 0.27, mean[("roc_auc", k)], 0.27, label=k)
    ax.set(xticks=xs, ylabel="test ROC AUC (mean over splits)", ylim=(0.3, 1.0))
    ax.set_xticklabels(mean.index, rotation=45, ha="right")
    ax.legend(ncol=3)
    fig.savefig(out / "anomaly_odds.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return [*lines, "![ODDS ROC AUC per dataset](anomaly_odds.png)", ""]


def nab_section(part: dict, out: Path, data: Path) -> list[str]:
    df = pd.DataFrame(part["rows"])
    a = part["args"]
    piv = df.pivot(index="series", columns="method", values=["roc_auc", "pr_auc", "best_f1", "best_f1_pa"])
    piv = piv.dropna()  # a series whose pair of rows was cut off by the time limit
    lines = ["## NAB (time series): vaekit `TimeSeriesDetector` vs rolling z-score", "",
             f"Command: `{part['command']}`  ", f"Machine: {part['machine']}", "",
             (f"Protocol: each series' first {a['train_fraction']:.0%} (NAB's probationary period) is the unlabelled "
             f"training prefix; every timestamp is scored and metrics use the timestamps after the prefix, with NAB's "
             f"labelled windows (combined_windows.json) as positives. vaekit: `TimeSeriesDetector(window={a['window']}, "
             f"steps={a['steps']})`, score = reconstruction probability of each window's last point (Donut). "
             f"Baseline: |x_t - mean| / std over the previous {a['window']} points. Best F1 is the best over all "
             "thresholds (an oracle threshold, as in Donut's papers); PA = with point adjustment. "
             "Series without a labelled anomaly after the prefix are skipped."), "",
             "| series | ROC vaekit | ROC z-score | PR vaekit | PR z-score | F1 vaekit | F1 z-score | F1-PA vaekit | F1-PA z-score |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key in piv.index:
        r = piv.loc[key]
        lines.append(f"| {key} | " + " | ".join(f"{r[(m, k)]:.3f}" for m in ("roc_auc", "pr_auc", "best_f1", "best_f1_pa")
                                                for k in ("vaekit", "zscore")) + " |")
    m = piv.mean()
    lines.append(f"| **mean ({len(piv)} series)** | " + " | ".join(
        f"**{m[(x, k)]:.3f}**" for x in ("roc_auc", "pr_auc", "best_f1", "best_f1_pa") for k in ("vaekit", "zscore")) + " |")
    wins = int((piv[("roc_auc", "vaekit")] > piv[("roc_auc", "zscore")]).sum())
    lines += ["", (f"Mean ROC AUC: vaekit {m[('roc_auc', 'vaekit')]:.3f} vs z-score {m[('roc_auc', 'zscore')]:.3f} "
              f"(vaekit higher on {wins} of {len(piv)} series); mean best F1: {m[('best_f1', 'vaekit')]:.3f} vs "
              f"{m[('best_f1', 'zscore')]:.3f}; with point adjustment {m[('best_f1_pa', 'vaekit')]:.3f} vs "
              f"{m[('best_f1_pa', 'zscore')]:.3f}. Mean vaekit fit+score time per series: "
              f"{df[df.method == 'vaekit'].seconds.mean():.1f} s."), "",
              "Target (time-series detector above the rolling z-score): "
              + ", ".join(f"{x}: vaekit {'above' if m[(x, 'vaekit')] > m[(x, 'zscore')] else '**not above**'} z-score"
                          for x in ("roc_auc", "pr_auc", "best_f1", "best_f1_pa"))
              + " (means over series). Point-adjusted F1 is near 1 for both because NAB's labelled windows are long: "
              "one flagged point anywhere in a window counts the whole window as found.", ""]
    ex = part.get("example")
    if ex:
        from vaekit.apps.anomaly.plot import plot_series
        series, labels = next((df, lab) for key, df, lab in nab_series(data) if key == ex["series"])
        plot_series(pd.to_datetime(series["timestamp"]), series[["value"]], np.asarray(ex["scores"]),
                    ex["threshold"], out / "anomaly_nab_example.png", labels=labels)
        lines += [f"Example ({ex['series']}; red = flagged at the detector's contamination=0.01 threshold; "
                  "shaded = NAB's labelled anomaly windows):", "",
                  "![NAB example](anomaly_nab_example.png)", ""]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("odds", "nab", "report"), required=True)
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--cache", default="/tmp/vaekit_anomaly_bench")
    p.add_argument("--datasets", nargs="*", default=None)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                   help="odds: detectors to run (the report needs all three)")
    p.add_argument("--splits", type=int, default=10)
    p.add_argument("--big", type=int, default=5000, help="sets with more rows use --big-splits")
    p.add_argument("--big-splits", type=int, default=3)
    p.add_argument("--vaekit-params", default="{}",
                   help='odds: other AnomalyDetector arguments as JSON, e.g. \'{"precision": "fp32"}\'')
    p.add_argument("--steps", type=int, default=None,
                   help="vaekit gradient-step target (epochs='auto'); default: the library's default")
    p.add_argument("--pyod-epochs", type=int, default=None, help="override PyOD VAE epoch_num (default: as shipped)")
    p.add_argument("--pyod-big-epochs", type=int, default=None, help="PyOD VAE epoch_num for sets above --big rows")
    p.add_argument("--window", type=int, default=60)
    p.add_argument("--train-fraction", type=float, default=0.15)
    p.add_argument("--example", default="machine_temperature_system_failure.csv")
    p.add_argument("--tag", default="", help="odds: cache as odds_TAG.json; the report merges every odds*.json")
    p.add_argument("--resume", action="store_true", help="nab: keep the series already in the cache")
    p.add_argument("--note", default="", help="odds with --tag: why this run replaces the main run's rows")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-bf16-hardware", action="store_true",
                   help="let vaekit's precision='auto' see a CPU without bf16 hardware (float32 everywhere), as on "
                        "a machine without avx512_bf16/amx_bf16; works on every vaekit release")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.no_bf16_hardware:
        import vaekit.runtime
        vaekit.runtime.cpu_has_fast_bf16 = lambda: False  # the one place precision='auto' asks
    if args.part == "report":
        return report(args)
    save_part(args, run_odds(args) if args.part == "odds" else run_nab(args))


if __name__ == "__main__":
    main()
