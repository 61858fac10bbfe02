"""The default training recipe against the previous one on several data sets, through `vaekit train`.

    python benchmarks/train_recipe.py [--data ../shared/data] [--seeds 3] [--adult-seeds 1]

Each data set is trained with the library defaults of `vaekit train` (50 epochs, the default model) under
two recipes, same data split and seed: "previous" (AdamW lr 1e-3, constant, batch 128) and "current"
(the TrainConfig defaults: lr 2e-3, linear warm-up over 2% of the steps, cosine decay to 0, batch 128).
Reported: test log p(x) (importance-weighted, k = 100, nats per row in the data's units) and the best
validation ELBO, mean over seeds, and training seconds. Data: three ODDS tables (letter, satimage-2,
cardio; all rows, labels ignored) and adult.data (mixed numeric and categorical columns). Binarized MNIST,
the fourth set, is in benchmarks/results/speed_<cpu>.md (the same two recipes, run by speed.py).
Writes benchmarks/results/train_recipe.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import RESULTS, atomic_write, command, machine

PREVIOUS = ["train.lr=0.001", "train.lr_schedule=none", "train.lr_warmup=0", "train.batch_size=128"]
RECIPES = {"previous": PREVIOUS, "current": []}  # current: whatever TrainConfig's defaults are
# the README's job keeps its own settings (80 epochs, batch 64, constant lr 4e-3): are they still best?
COSINE = ["train.lr_schedule=cosine", "train.lr_warmup=0.02"]
DIGITS = {"digits (its defaults: 80 epochs, constant lr 4e-3)": [],
          "digits, 80 epochs, warm-up + cosine": COSINE,
          "digits, 40 epochs, warm-up + cosine": ["train.epochs=40", *COSINE]}
ADULT = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation", "relationship",
         "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country", "income"]


def tables(data: Path, work: Path) -> dict[str, Path]:
    """CSV files for `vaekit train`: the ODDS matrices without labels, adult.data with a header."""
    import scipy.io

    out = {}
    for name in ("letter", "satimage-2", "cardio"):
        x = scipy.io.loadmat(data / "odds_pyod" / f"{name}.mat")["X"].astype(float)
        path = work / f"{name}.csv"
        np.savetxt(path, x, delimiter=",", header=",".join(f"f{i}" for i in range(x.shape[1])), comments="")
        out[name] = path
    path = work / "adult.csv"
    with open(data / "adult" / "adult.data") as f, open(path, "w", newline="") as g:
        w = csv.writer(g)
        w.writerow(ADULT)
        for line in f:
            parts = [p.strip() for p in line.strip().split(",")]
            if len(parts) == len(ADULT):
                w.writerow(parts)
    out["adult"] = path
    return out


def run(src: Path, out: Path, seed: int, sets: list[str]) -> dict:
    cmd = [sys.executable, "-m", "vaekit", "train", str(src), "--out", str(out), "--threads", "1", "--k", "100",
           "--set", f"data.seed={seed}", "--set", f"train.seed={seed}", *(a for s in sets for a in ("--set", s))]
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    ev = json.loads((out / "evaluation.json").read_text())
    m = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    shutil.rmtree(out, ignore_errors=True)
    return {"test_ll": ev["log_likelihood"], "best_val": max(r["val_elbo"] for r in m),
            "train_s": sum(r["seconds"] for r in m)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--adult-seeds", type=int, default=1)
    args = p.parse_args()
    started = datetime.datetime.now()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for seed in range(args.seeds):
            for recipe, sets in DIGITS.items():
                r = run(Path("digits"), work / f"digits_{seed}", seed, sets)
                rows.append({"set": "digits", "recipe": recipe, "seed": seed, **r})
                print(json.dumps(rows[-1]), flush=True)
        for name, src in tables(args.data, work).items():
            for seed in range(args.adult_seeds if name == "adult" else args.seeds):
                for recipe, sets in RECIPES.items():
                    r = run(src, work / f"{name}_{recipe}_{seed}", seed, sets)
                    rows.append({"set": name, "recipe": recipe, "seed": seed, **r})
                    print(json.dumps(rows[-1]), flush=True)
    lines = ["# Training recipe: current defaults vs the previous ones", "",
             f"Command: `{command()}`  ", f"Date: {started.isoformat(timespec='seconds')} "
             f"({(datetime.datetime.now() - started).total_seconds() / 60:.1f} min)  ", f"Machine: {machine()}", "",
             "`vaekit train DATA` with the library's default model and 50 epochs; previous recipe: AdamW lr 1e-3, "
             "constant, batch 128; current: the TrainConfig defaults (lr 2e-3, linear warm-up over 2% of the steps, "
             "cosine decay to 0, batch 128). Same split and seed for both; test log p(x) importance-weighted "
             "(k = 100), nats per row in the data's units; mean over seeds (each seed's difference in brackets).", "",
             "| data | seeds | test log p(x), previous | test log p(x), current | current - previous (per seed) | "
             "best val ELBO previous / current | train s previous / current |", "|---|---:|---:|---:|---|---|---|"]
    for name in dict.fromkeys(r["set"] for r in rows if r["set"] != "digits"):
        a = [r for r in rows if r["set"] == name and r["recipe"] == "previous"]
        b = [r for r in rows if r["set"] == name and r["recipe"] == "current"]
        diffs = [y["test_ll"] - x["test_ll"] for x, y in zip(a, b, strict=True)]
        lines.append(f"| {name} | {len(a)} | {statistics.mean(r['test_ll'] for r in a):.3f} | "
                     f"{statistics.mean(r['test_ll'] for r in b):.3f} | {statistics.mean(diffs):+.3f} "
                     f"({', '.join(f'{d:+.2f}' for d in diffs)}) | {statistics.mean(r['best_val'] for r in a):.2f} / "
                     f"{statistics.mean(r['best_val'] for r in b):.2f} | {statistics.mean(r['train_s'] for r in a):.1f} / "
                     f"{statistics.mean(r['train_s'] for r in b):.1f} |")
    lines += ["", "The README's job (`vaekit train digits`, its own defaults) against cosine schedules, same seeds:", "",
              "| recipe | test log p(x) per seed | mean | train s |", "|---|---|---:|---:|"]
    for recipe in DIGITS:
        d = [r for r in rows if r["recipe"] == recipe]
        lines.append(f"| {recipe} | {', '.join(format(r['test_ll'], '.2f') for r in d)} | "
                     f"{statistics.mean(r['test_ll'] for r in d):.2f} | {statistics.mean(r['train_s'] for r in d):.1f} |")
    lines += ["", "<details><summary>raw rows (JSON)</summary>", "", "```json", json.dumps(rows, indent=1), "```",
              "</details>", ""]
    atomic_write(RESULTS / "train_recipe.md", lambda path: path.write_text("\n".join(lines)))
    print("\n".join(lines[:20]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
