"""The 3,000-row sample of ``synthetic_tables.py`` over several seeds: vaekit's defaults against TVAE's.

    python benchmarks/synthetic_tables_repeats.py --sdv-python /work/venvs/sdv/bin/python --seeds 5
        # -> benchmarks/results/synthetic_tables_repeats.md (records in synthetic_tables_repeats.jsonl)
    python benchmarks/synthetic_tables_repeats.py --report   # the .md again from the records
    python benchmarks/synthetic_tables_repeats.py --sdv-python ... --seeds 3 --small 0 \
        --out benchmarks/results/synthetic_tables_repeats_full.md --records benchmarks/results/synthetic_tables_repeats_full.jsonl
        # the same on all of adult.data (TVAE takes about 18 minutes a seed there)

``synthetic_tables.py`` fits each method once (seed 0), and on the 3,000-row sample its margins are small
next to what one seed moves them by: TVAE's fit took 23 to 27 s in runs of the same command, and the
ML-efficacy F1 of either method moves by a few points between seeds. Here the same sample of ``adult.data``
(``train.sample(3000, random_state=0)``) is fitted by ``TabularSynthesizer()`` and by TVAE (ctgan, 300
epochs) with seeds 0 .. n-1, each fit in its own process on one torch thread, one after another (vaekit then
TVAE for each seed, so both see the same machine), scored as there (SDMetrics quality score, ML efficacy of a
HistGradientBoostingClassifier trained on the synthetic rows and tested on ``adult.test``). The issue's
targets are checked on the means over seeds. With ``--small 0`` the whole of ``adult.data`` is fitted instead
(the full-table part of ``synthetic_tables.py``, where one seed's F1 margin is also within the seed noise).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_tables import HERE, read_adult, read_csv_like, run_worker, score

METHODS = {"vaekit TabularSynthesizer()": "vaekit", "TVAE (ctgan, defaults: 300 epochs)": "tvae"}
MEASURES = (("quality", "quality score", "{:.3f}"), ("f1", "ML efficacy F1", "{:.3f}"),
            ("fit_seconds", "fit time (s)", "{:.1f}"))


def write(args, recs: list[dict], done: bool) -> None:
    cpu = next((ln.split(":", 1)[1].strip() for ln in subprocess.run(["lscpu"], capture_output=True, text=True)
                .stdout.splitlines() if ln.startswith("Model name")), platform.processor())
    loads = [r["load"] for r in recs]
    table = f"the {args.small:,}-row sample" if args.small else "all of adult.data"
    lines = [f"# Synthetic tables: {table} over seeds", "",
             f"Command: `python benchmarks/synthetic_tables_repeats.py "
             f"{recs[0]['command'] if recs else ' '.join(sys.argv[1:])}`  ",
             f"Date: {recs[-1]['date'] if recs else time.strftime('%Y-%m-%d %H:%M')}; CPU: {cpu}, {os.cpu_count()} cores, 1 torch thread per fit; "
             + (f"load average after each fit {min(loads):.1f}-{max(loads):.1f} (the fit itself about 1)." if loads
                else "no fit finished."), "",
             *([] if done else ["**Partial results: the run had not finished when this file was written.**", ""]),
             (__doc__ or "").split("\n\n")[2].replace("\n", " "), "",
             "| method | seed | " + " | ".join(m[1] for m in MEASURES) + " |", "|---|---:|" + "---:|" * len(MEASURES)]
    lines += [f"| {r['method']} | {r['seed']} | " + " | ".join(f.format(r[k]) for k, _, f in MEASURES) + " |"
              for r in recs]
    means = {}
    lines += ["", "Mean ± standard deviation over seeds:", "", "| method | seeds | "
              + " | ".join(m[1] for m in MEASURES) + " |", "|---|---:|" + "---:|" * len(MEASURES)]
    for m in METHODS:
        rs = [r for r in recs if r["method"] == m]
        if rs:
            means[m] = {k: float(np.mean([r[k] for r in rs])) for k, _, _ in MEASURES}
            sd = {k: float(np.std([r[k] for r in rs], ddof=1)) if len(rs) > 1 else float("nan") for k, _, _ in MEASURES}
            lines.append(f"| {m} | {len(rs)} | " + " | ".join(f"{f.format(means[m][k])} ± {f.format(sd[k])}"
                                                               for k, _, f in MEASURES) + " |")
    if len(means) == 2:
        v, t = means["vaekit TabularSynthesizer()"], means["TVAE (ctgan, defaults: 300 epochs)"]
        ratio = t["fit_seconds"] / v["fit_seconds"]
        lines += ["", "Targets, on the means:", "",
                  f"- {'met' if v['quality'] > t['quality'] else 'MISSED'}: quality {v['quality']:.3f} vs TVAE "
                  f"{t['quality']:.3f}",
                  f"- {'met' if v['f1'] > t['f1'] else 'MISSED'}: ML-efficacy F1 {v['f1']:.3f} vs TVAE {t['f1']:.3f}",
                  f"- {'met' if ratio >= 3 else 'MISSED'}: training time {v['fit_seconds']:.1f} s vs TVAE "
                  f"{t['fit_seconds']:.1f} s ({ratio:.2f}x less; target 3x)"]
    out = Path(args.out)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-12:]), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "adult"))
    p.add_argument("--sdv-python", default="", help="python of an environment with ctgan (needed to run)")
    p.add_argument("--report", action="store_true", help="write the .md from the records only")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--small", type=int, default=3000, help="rows of the sample (0: all of adult.data)")
    p.add_argument("--work", default="/tmp/vaekit_synthetic_tables_repeats")
    p.add_argument("--out", default=str(HERE / "results" / "synthetic_tables_repeats.md"))
    p.add_argument("--records", default=str(HERE / "results" / "synthetic_tables_repeats.jsonl"))
    args = p.parse_args()
    records = Path(args.records)
    if args.report:
        return write(args, [json.loads(line) for line in records.read_text().splitlines()], done=True)
    if not args.sdv_python:
        raise SystemExit("--sdv-python is needed to run TVAE")
    records.write_text("")
    data = Path(args.data)
    train = read_adult(data / "adult.data")
    test = read_adult(data / "adult.test")
    small = train.sample(args.small, random_state=0).reset_index(drop=True) if args.small else train  # as there
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    train_csv = work / "train.csv"
    small.to_csv(train_csv, index=False)
    recs: list[dict] = []
    for seed in range(args.seeds):
        for label, worker in METHODS.items():
            out = work / f"{worker}_{seed}.csv"
            python = sys.executable if worker == "vaekit" else args.sdv_python
            info = run_worker(python, worker, train_csv, out, seed=seed, epochs=300, params="{}")
            s = score(small, read_csv_like(out, small), test)
            recs.append({"method": label, "seed": seed, "fit_seconds": info["fit_seconds"], "load": info["load"],
                         "quality": float(s["quality"]), "f1": float(s["f1"]), "command": " ".join(sys.argv[1:]),
                         "date": time.strftime("%Y-%m-%d %H:%M")})
            print(json.dumps(recs[-1]), flush=True)
            with records.open("a") as f:
                f.write(json.dumps(recs[-1]) + "\n")
            write(args, recs, done=False)
    write(args, recs, done=True)


if __name__ == "__main__":
    main()
