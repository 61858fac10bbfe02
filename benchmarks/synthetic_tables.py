"""Synthetic tables on UCI Adult: vaekit's TabularSynthesizer against SDV's TVAE (``ctgan`` package: its
defaults, and a run given the same training time as vaekit), SDV's GaussianCopula and independent
per-column sampling (the floor), on the full training file and on a 3,000-row subsample; plus data
augmentation for a rare class (none, SMOTE-NC, vaekit) with a gradient-boosted classifier.

    python benchmarks/synthetic_tables.py --sdv-python /work/venvs/sdv/bin/python

Every method runs in a worker process of its own (``--worker``), so that its training time and peak
memory are its own; ctgan/sdv pin their own dependencies and run from a separate environment
(``--sdv-python``). Each worker fits on the training rows and writes max(n_train, 10,000) synthetic
rows to a CSV; the parent scores every CSV the same way (``vaekit.apps.tables.quality_report``:
SDMetrics' quality report, ML efficacy of one HistGradientBoostingClassifier trained on the
synthetic rows and tested on ``adult.test``, DCR and exact copies against ``adult.test``).
One torch thread everywhere. Writes ``benchmarks/results/synthetic_tables.md`` and the README
section ``benchmarks/results/synthetic_tables_readme_section.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
           "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
           "income"]
TARGET = "income"
HERE = Path(__file__).resolve().parent


def read_adult(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, header=None, names=COLUMNS, skipinitialspace=True, na_values="?", comment="|")
    frame[TARGET] = frame[TARGET].str.rstrip(".")  # adult.test writes ">50K."
    return frame.dropna(how="all").reset_index(drop=True)


def read_csv_like(path: Path, like: pd.DataFrame) -> pd.DataFrame:
    frame = pd.read_csv(path)
    for c in like.columns:
        if pd.api.types.is_object_dtype(like[c]):
            frame[c] = frame[c].where(frame[c].isna(), frame[c].astype(str))
    return frame[list(like.columns)]


# -- workers: one process per method -------------------------------------------------------------------
def worker(args) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    train = pd.read_csv(args.train)
    for c in train.columns:
        if pd.api.types.is_object_dtype(train[c]):
            train[c] = train[c].where(train[c].isna(), train[c].astype(str))
    n = max(len(train), 10_000)
    discrete = [c for c in train.columns if pd.api.types.is_object_dtype(train[c])]
    t0 = time.perf_counter()
    if args.worker == "vaekit":
        from vaekit.apps.tables import TabularSynthesizer

        model = TabularSynthesizer(random_state=args.seed, **json.loads(args.params)).fit(train)
        fit_s = time.perf_counter() - t0
        fake = model.sample(n, random_state=args.seed)
    elif args.worker == "tvae":
        from ctgan import TVAE

        torch.manual_seed(args.seed)
        model = TVAE(epochs=args.epochs)
        model.fit(train, discrete_columns=discrete)
        fit_s = time.perf_counter() - t0
        fake = model.sample(n)
    elif args.worker == "copula":
        from sdv.metadata import Metadata
        from sdv.single_table import GaussianCopulaSynthesizer

        metadata = Metadata.detect_from_dataframes({"adult": train})
        model = GaussianCopulaSynthesizer(metadata)
        model.fit({"adult": train})  # sdv 2 takes {table name: frame}
        fit_s = time.perf_counter() - t0
        fake = model.sample(n)
        fake = fake["adult"] if isinstance(fake, dict) else fake
    elif args.worker == "independent":
        rng = np.random.default_rng(args.seed)  # each column resampled on its own: exact marginals, no joint law
        fake = pd.DataFrame({c: train[c].to_numpy()[rng.integers(0, len(train), n)] for c in train.columns})
        fit_s = time.perf_counter() - t0
    else:
        raise SystemExit(f"unknown worker {args.worker}")
    fake.to_csv(args.out, index=False)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.out).with_suffix(".json").write_text(json.dumps({"fit_seconds": fit_s, "peak_mb": peak_mb}))


def run_worker(python: str, name: str, train: Path, out: Path, *, seed: int, epochs: int = 300,
               params: str = "{}", timeout: float = 7200) -> dict:
    cmd = [python, str(Path(__file__).resolve()), "--worker", name, "--train", str(train), "--out", str(out),
           "--seed", str(seed), "--epochs", str(epochs), "--params", params]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"worker {name} failed:\n{done.stderr[-3000:]}")
    info = json.loads(out.with_suffix(".json").read_text())
    info["wall_seconds"], info["load"] = time.perf_counter() - t0, os.getloadavg()[0]
    return info


# -- scoring -------------------------------------------------------------------------------------------
def score(train: pd.DataFrame, fake: pd.DataFrame, test: pd.DataFrame) -> dict:
    from vaekit.apps.tables import quality_report

    r = quality_report(train, fake, holdout=test, target=TARGET)
    v = r.summary.set_index("measure")["value"]
    shares = train.drop(columns=[c for c in train.columns if not pd.api.types.is_object_dtype(train[c])])
    lost = []
    for c in shares.columns:  # categories with >= 0.5% of training rows absent from 10,000 synthetic rows
        freq = train[c].value_counts(normalize=True)
        seen = set(fake[c].iloc[:10_000].dropna().astype(str))
        lost += [f"{c}={k}" for k, f in freq.items() if f >= 0.005 and str(k) not in seen]
    return {"quality": v["quality score"], "shapes": v["column shapes"], "pairs": v["column pair trends"],
            "f1": v["ML efficacy F1 (train synthetic)"], "acc": v["ML efficacy accuracy (train synthetic)"],
            "f1_real": v["ML efficacy F1 (train real)"], "acc_real": v["ML efficacy accuracy (train real)"],
            "dcr": v["DCR overfitting protection"], "closer": v["synthetic rows closer to training (%)"],
            "copies": v["exact copies of training rows (synthetic, %)"],
            "copies_holdout": v["exact copies of training rows (held-out real, %)"], "lost": lost,
            "report": r}


def benchmark_table(name: str, train: pd.DataFrame, test: pd.DataFrame, work: Path, args, rows: list,
                    save) -> list[dict]:
    """Every method on ``train``; ``rows`` grows as methods finish and ``save()`` writes what is there."""
    work.mkdir(parents=True, exist_ok=True)
    train_csv = work / "train.csv"
    train.to_csv(train_csv, index=False)

    def one(label, python, worker_name, **kw):
        out = work / f"{label.replace(' ', '_').replace(',', '').replace('(', '').replace(')', '')}.csv"
        print(f"[{name}] {label} ...", flush=True)
        info = run_worker(python, worker_name, train_csv, out, seed=args.seed, **kw)
        fake = read_csv_like(out, train)
        s = score(train, fake, test)
        rows.append({"method": label, **info, **s})
        print(f"[{name}] {label}: quality {s['quality']:.3f} F1 {s['f1']:.3f} fit {info['fit_seconds']:.0f} s",
              flush=True)
        save()
        return info

    vk = one("vaekit TabularSynthesizer", sys.executable, "vaekit", params=args.vaekit_params)
    for extra in args.vaekit_extra:  # the same estimator with other settings, e.g. {"beta": 0.5}
        settings = ", ".join(f"{k}={v}" for k, v in json.loads(extra).items())
        one(f"vaekit TabularSynthesizer ({settings})", sys.executable, "vaekit",
            params=json.dumps({**json.loads(args.vaekit_params), **json.loads(extra)}))
    one("independent columns (floor)", sys.executable, "independent")
    if args.sdv_python:
        tv = one(f"TVAE (ctgan, defaults: {args.tvae_epochs} epochs)", args.sdv_python, "tvae",
                 epochs=args.tvae_epochs)
        eq = max(1, round(args.tvae_epochs * vk["fit_seconds"] / tv["fit_seconds"]))
        one(f"TVAE (ctgan, equal time: {eq} epochs)", args.sdv_python, "tvae", epochs=eq)
        one("GaussianCopula (sdv)", args.sdv_python, "copula")
    return rows


# -- augmentation ------------------------------------------------------------------------------------
def rare_split(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """All <=50K rows and as many >50K rows as make ``share`` of the table."""
    neg, pos = frame[frame[TARGET] == "<=50K"], frame[frame[TARGET] == ">50K"]
    k = round(share * len(neg) / (1 - share))
    return pd.concat([neg, pos.sample(k, random_state=seed)]).sample(frac=1, random_state=seed).reset_index(drop=True)


def classify(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score, balanced_accuracy_score, f1_score

    from vaekit.apps.tables.quality import features

    clf = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    clf.fit(features(train, test, TARGET), train[TARGET])
    x = features(test, test, TARGET)
    pred, p = clf.predict(x), clf.predict_proba(x)[:, list(clf.classes_).index(">50K")]
    y = test[TARGET].to_numpy()
    return {"f1": f1_score(y, pred, pos_label=">50K"), "ap": average_precision_score(y == ">50K", p),
            "bacc": balanced_accuracy_score(y, pred)}


def smote_nc(train: pd.DataFrame, n_new: int, seed: int) -> pd.DataFrame:
    from imblearn.over_sampling import SMOTENC

    x = train.drop(columns=[TARGET]).copy()
    cats = [i for i, c in enumerate(x.columns) if pd.api.types.is_object_dtype(x[c])]
    for i in cats:
        x.iloc[:, i] = x.iloc[:, i].fillna("<NA>")
    counts = train[TARGET].value_counts()
    target = {">50K": int(counts[">50K"] + n_new), "<=50K": int(counts["<=50K"])}
    xs, ys = SMOTENC(categorical_features=cats, sampling_strategy=target, random_state=seed).fit_resample(x, train[TARGET])
    out = pd.DataFrame(xs, columns=x.columns)
    for i in cats:
        out.iloc[:, i] = out.iloc[:, i].replace("<NA>", np.nan)
    out[TARGET] = np.asarray(ys)
    return out


def augmentation(full: pd.DataFrame, test: pd.DataFrame, args) -> list[dict]:
    from vaekit.apps.tables import TabularSynthesizer
    from vaekit.apps.tables.augment import augment_table

    train = rare_split(full, args.rare_share, args.seed)
    rare_test = rare_split(test, args.rare_share, args.seed + 1)
    n_pos = int((train[TARGET] == ">50K").sum())
    n_new = round(args.augment_to * (train[TARGET] == "<=50K").sum() / (1 - args.augment_to)) - n_pos
    print(f"[augment] {len(train)} training rows, {n_pos} of the rare class; adding {n_new}", flush=True)
    out = [{"method": "none", **classify(train, rare_test, args.seed)}]
    t0 = time.perf_counter()
    out.append({"method": f"SMOTE-NC (imbalanced-learn), +{n_new} rows", **classify(smote_nc(train, n_new, args.seed), rare_test, args.seed),
                "seconds": time.perf_counter() - t0})
    t0 = time.perf_counter()
    syn = TabularSynthesizer(random_state=args.seed, **json.loads(args.vaekit_params)).fit(train)
    extra = augment_table(train, TARGET, n_new, classes=[">50K"], model=syn, random_state=args.seed)
    out.append({"method": f"vaekit.augment, +{n_new} rows", **classify(pd.concat([train, extra], ignore_index=True),
                                                                        rare_test, args.seed),
                "seconds": time.perf_counter() - t0})
    for r in out:
        print(f"[augment] {r['method']}: F1 {r['f1']:.3f} AP {r['ap']:.3f} balanced acc {r['bacc']:.3f}", flush=True)
    return out, len(train), n_pos, len(rare_test), int((rare_test[TARGET] == ">50K").sum())


# -- report ------------------------------------------------------------------------------------------
def table_md(rows: list[dict]) -> list[str]:
    real = rows[0]
    lines = ["| method | quality score | column shapes | column pair trends | ML efficacy F1 | accuracy | "
             "DCR protection | exact copies % | fit time (s) | peak memory (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['quality']:.3f} | {r['shapes']:.3f} | {r['pairs']:.3f} | {r['f1']:.3f} | "
                     f"{r['acc']:.3f} | {r['dcr']:.3f} | {r['copies']:.2f} | {r['fit_seconds']:.0f} | {r['peak_mb']:.0f} |")
    lines.append(f"| real training rows (reference) | | | | {real['f1_real']:.3f} | {real['acc_real']:.3f} | | "
                 f"{real['copies_holdout']:.2f} (adult.test rows) | | |")
    return lines


def checks_md(rows: list[dict]) -> list[str]:
    vk = rows[0]
    tvae = next((r for r in rows if r["method"].startswith("TVAE (ctgan, defaults")), None)
    floor = next((r for r in rows if r["method"].startswith("independent")), {"quality": float("nan")})
    out = []

    def line(ok, text):
        out.append(f"- {'met' if ok else 'MISSED'}: {text}")

    if tvae is not None:
        line(vk["quality"] > tvae["quality"] and vk["quality"] > floor["quality"],
             f"quality {vk['quality']:.3f} vs TVAE {tvae['quality']:.3f} and the floor {floor['quality']:.3f}")
        line(vk["f1"] > tvae["f1"], f"ML-efficacy F1 {vk['f1']:.3f} vs TVAE {tvae['f1']:.3f}")
        line(tvae["fit_seconds"] >= 3 * vk["fit_seconds"],
             f"training time {vk['fit_seconds']:.0f} s vs TVAE {tvae['fit_seconds']:.0f} s "
             f"({tvae['fit_seconds'] / vk['fit_seconds']:.1f}x less)")
    else:
        line(vk["quality"] > floor["quality"], f"quality {vk['quality']:.3f} vs the floor {floor['quality']:.3f}")
    line(not vk["lost"], "no category with >= 0.5% of the training rows missing from 10,000 samples"
         + (f" (missing: {', '.join(vk['lost'])})" if vk["lost"] else ""))
    line(vk["f1"] >= 0.9 * vk["f1_real"], f"minority-class (>50K) F1 from synthetic-only training {vk['f1']:.3f} = "
         f"{100 * vk['f1'] / vk['f1_real']:.0f}% of the real-data F1 {vk['f1_real']:.3f} (target >= 90%)")
    line(vk["copies"] <= vk["copies_holdout"], f"exact copies of training rows: {vk['copies']:.2f}% of synthetic rows "
         f"vs {vk['copies_holdout']:.2f}% of held-out real rows")
    for r in rows[1:]:
        if r["method"].startswith("vaekit") and tvae is not None:
            out.append(f"- not the defaults, for comparison: {r['method']}: quality {r['quality']:.3f} vs TVAE "
                       f"{tvae['quality']:.3f}, F1 {r['f1']:.3f} vs TVAE {tvae['f1']:.3f} "
                       f"({100 * r['f1'] / r['f1_real']:.0f}% of the real-data F1), training time "
                       f"{tvae['fit_seconds'] / r['fit_seconds']:.1f}x less than TVAE's")
    return out


def load_note(results: dict) -> str:
    """The 1-minute load average seen as each worker ended (the worker itself adds about 1)."""
    loads = [r["load"] for rows in results.values() for r in rows if "load" in r]
    if not loads:
        return "load not recorded"
    return (f"load average after each method {min(loads):.1f}-{max(loads):.1f}, the worker itself about 1: "
            + ("other work shared the cores, so times carry noise" if max(loads) > 1.6 else "a quiet machine"))


def write_results(args, results: dict, aug, *, done: bool = True) -> None:
    import platform

    import sdmetrics
    import sklearn
    import torch

    cpu = next((ln.split(":", 1)[1].strip() for ln in subprocess.run(["lscpu"], capture_output=True, text=True)
                .stdout.splitlines() if ln.startswith("Model name")), platform.processor())
    sdv_versions = ""
    if args.sdv_python:
        sdv_versions = subprocess.run([args.sdv_python, "-c", "import ctgan, sdv; print(f'ctgan {ctgan.__version__}, "
                                       "sdv {sdv.__version__}')"], capture_output=True, text=True).stdout.strip()
    head = [
        "# Synthetic tables: UCI Adult", "",
        f"Command: `python benchmarks/synthetic_tables.py {' '.join(sys.argv[1:])}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M')}; CPU: {cpu}, 1 torch thread per method, one method after "
        f"another on the machine's {os.cpu_count()} cores ({load_note(results)}); torch " + torch.__version__ + f", sdmetrics {sdmetrics.__version__}, scikit-learn {sklearn.__version__}"
        + (f", {sdv_versions} (separate environment)" if sdv_versions else "") + ".  ",
        f"vaekit settings: `{args.vaekit_params}` over the defaults of `TabularSynthesizer` (seed {args.seed}).", "",
        *([] if done else ["**Partial results: the run had not finished when this file was written; the methods "
                           "and sections missing below did not run to the end.**", ""]),
        "Fit on `adult.data`, score against it; ML efficacy: a HistGradientBoostingClassifier (scikit-learn defaults) "
        "trained on each synthetic set, tested on `adult.test`, F1 of the >50K class; privacy against `adult.test` "
        "as the held-out set (SDMetrics' DCROverfittingProtection: 1.0 = synthetic rows are no closer to the training "
        "rows than to held-out rows; exact copies: synthetic rows equal to a training row). Each method wrote "
        "max(n_train, 10,000) rows. Fit time includes preprocessing; peak memory is the worker process's maximum "
        "resident set (Python, torch and the data included).", ""]
    body = []
    for name, rows in results.items():
        if rows:
            body += [f"## {name}", "", *table_md(rows), "", "Targets:", "", *checks_md(rows), ""]
    if aug is not None:
        aug_rows, n_train, n_pos, n_test, n_test_pos = aug
        body += ["## Augmentation for a rare class", "",
                 f"Training table: every <=50K row of `adult.data` and a random sample of >50K rows making "
                 f"{100 * args.rare_share:.0f}% ({n_pos} of {n_train} rows); test: `adult.test` with the same "
                 f"share ({n_test_pos} of {n_test}). Each method adds rare-class rows until the class is "
                 f"{100 * args.augment_to:.0f}% of the training table; the classifier is the same "
                 "HistGradientBoostingClassifier. F1 and balanced accuracy at the default threshold; AP = average "
                 "precision (area under the precision-recall curve).", "",
                 "| augmentation | F1 (>50K) | average precision | balanced accuracy | time (s) |", "|---|---|---|---|---|"]
        for r in aug_rows:
            sec = f"{r['seconds']:.0f}" if "seconds" in r else ""
            body.append(f"| {r['method']} | {r['f1']:.3f} | {r['ap']:.3f} | {r['bacc']:.3f} | {sec} |")
        body.append("")
    Path(args.out).write_text("\n".join(head + body))
    readme_section(args, results, aug)
    print(f"wrote {args.out}")


def readme_section(args, results: dict, aug) -> None:
    rows = next(iter(results.values()))
    lines = ["## Synthetic tables", "",
             "`vaekit.TabularSynthesizer` learns a mixed-type table (numbers with multi-modal or skewed "
             "distributions, integers, categories including rare ones, booleans, dates, missing cells) and "
             "generates new rows with the same columns, dtypes, categories and ranges:", "",
             "```python", "import vaekit", "",
             "syn = vaekit.TabularSynthesizer(random_state=0).fit(frame)",
             "fake = syn.sample(10_000)                                # reproducible with random_state=...",
             "rich = syn.sample(1_000, conditions={\"income\": \">50K\"})  # only rows with that value",
             "log_p = syn.score_samples(frame)                         # log p(row) in nats",
             "report = vaekit.tabular.quality_report(frame, fake, holdout=test, target=\"income\")",
             "report.to_html(\"report.html\")", "```", "",
             "From the command line: `vaekit synth fit table.csv --out syn/`, "
             "`vaekit synth sample syn/ -n 10000 --out fake.csv --where income=\">50K\"`, "
             "`vaekit synth report real.csv fake.csv --out report.html`.", "",
             "On UCI Adult (fit on adult.data, ML efficacy tested on adult.test; "
             "`benchmarks/synthetic_tables.py`, full results in `benchmarks/results/synthetic_tables.md`):", "",
             *table_md(rows), "",
             "![Real against synthetic columns in the HTML quality report](docs/images/synth_report.png)", ""]
    if aug is not None:
        lines += [f"Augmenting a rare class ({100 * args.rare_share:.0f}% of rows) for a gradient-boosted classifier:", "",
                  "| augmentation | F1 (>50K) | average precision | balanced accuracy |", "|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['f1']:.3f} | {r['ap']:.3f} | {r['bacc']:.3f} |" for r in aug[0]]
        lines.append("")
    Path(args.readme_out).write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "adult"))
    p.add_argument("--sdv-python", default="", help="python of an environment with ctgan and sdv (empty: skip them)")
    p.add_argument("--tvae-epochs", type=int, default=300, help="TVAE's default is 300")
    p.add_argument("--small", type=int, default=3000, help="rows of the subsample (0: skip)")
    p.add_argument("--vaekit-params", default="{}", help="JSON of TabularSynthesizer parameters")
    p.add_argument("--vaekit-extra", nargs="*", default=[], help="JSON parameter sets for further vaekit rows "
                   "(over --vaekit-params), reported beside the defaults; the targets are judged on the first row")
    p.add_argument("--rare-share", type=float, default=0.03)
    p.add_argument("--augment-to", type=float, default=0.2)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="/tmp/vaekit_synthetic_tables")
    p.add_argument("--report-html", default="", help="write vaekit's HTML quality report (full table) here")
    p.add_argument("--out", default=str(HERE / "results" / "synthetic_tables.md"))
    p.add_argument("--readme-out", default=str(HERE / "results" / "synthetic_tables_readme_section.md"))
    # worker mode
    p.add_argument("--worker", default="")
    p.add_argument("--train", default="")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--params", default="{}")
    args = p.parse_args()
    if args.worker:
        return worker(args)
    import torch

    torch.set_num_threads(1)
    data = Path(args.data)
    train, test = read_adult(data / "adult.data"), read_adult(data / "adult.test")
    work = Path(args.work)
    results: dict[str, list] = {}
    state = {"aug": None, "done": False}

    def save():
        write_results(args, results, state["aug"], done=state["done"])

    full = results.setdefault(f"Adult, full training file ({len(train)} rows)", [])
    benchmark_table("full", train, test, work / "full", args, full, save)
    if args.report_html:
        full[0]["report"].to_html(args.report_html, title="vaekit on UCI Adult (adult.data against 32,561 samples)")
    if args.small:
        small = train.sample(args.small, random_state=args.seed).reset_index(drop=True)
        rows = results.setdefault(f"Adult, {args.small}-row subsample", [])
        benchmark_table("small", small, test, work / "small", args, rows, save)
    if not args.no_augment:
        state["aug"] = augmentation(train, test, args)
    state["done"] = True
    save()


if __name__ == "__main__":
    main()
