"""Choosing ``SemiSupervisedClassifier``'s table defaults on development tables (issue 18), not on the
benchmark's draws.

    python benchmarks/few_labels_tables_dev.py run        # every (table, draw, labels) cell; cached, resumable
    python benchmarks/few_labels_tables_dev.py report     # -> benchmarks/results/few_labels_tables_dev.md

Three binary tables: UCI Adult's income (draws 11 and 12; ``benchmarks/few_labels_adult.py`` reports draws
6-10, which are not used here), ADBench's magic.gamma (gamma against hadron, 35% positive) and campaign
(bank marketing, 11% positive). For each draw d: 3,000 rows at random (seed d) form the training pool, L of
them (at least one per class) keep their label; a further 5,000 rows never in the pool are the test set.
vaekit's configurations (M1+M2 with q(y|x) an MLP or a softmax regression on M1's code, ``alpha`` the default
0.1 N = 300 or 10x that, M1's code of 32 or 64 dimensions; M2 on the table's columns) are fitted on the raw frame;
self-training and supervised logistic regression get it one-hot encoded and standardised, as in
``few_labels_adult.py``. The linear classifier's lower mean error than the MLP's here made it the table
default (``classifier="auto"``); until then the MLP was. The three "wide" rows (q(y|x) a softmax regression on
M1's code and the encoded row, the row's weights penalised like ``LogisticRegression(C)``'s, relative to the
alpha-weighted labelled cross-entropy) were added after ``few_labels_wide_probe.py`` measured the idea; C 0.1
and 0.03 after C 0.3 / 1 / 3 showed the error falling with C.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, RESULTS, command, machine, write
from few_labels_adult import keep_labels, table_encoder

TABLES = {"adult": (11, 12), "ad_22_magic.gamma": (1, 2), "ad_5_campaign": (1, 2)}
LABELS = (20, 100, 500)
# method='m2' on a data frame: M2 with the table likelihood on the raw columns, q(y|x) on the encoded row
CONFIGS = {"m1+m2, mlp (the session-11 default)": {"classifier": "mlp"},
           "m1+m2, linear (the table default)": {"classifier": "linear"},
           "m1+m2, mlp, alpha 10x": {"classifier": "mlp", "alpha": 3000.0},
           "m1+m2, linear, alpha 10x": {"classifier": "linear", "alpha": 3000.0},
           "m1+m2, linear, M1 code 64": {"classifier": "linear", "m1_latent_dim": 64},
           "m1+m2, mlp, M1 code 64": {"classifier": "mlp", "m1_latent_dim": 64},
           "m2 on the columns, linear": {"method": "m2", "classifier": "linear"},
           "m1+m2, wide, C 0.03": {"classifier": "wide", "wide_c": 0.03},
           "m1+m2, wide, C 0.1": {"classifier": "wide", "wide_c": 0.1},
           "m1+m2, wide, C 0.3": {"classifier": "wide", "wide_c": 0.3},
           "m1+m2, wide, C 1": {"classifier": "wide", "wide_c": 1.0},
           "m1+m2, wide, C 3": {"classifier": "wide", "wide_c": 3.0}}
BASELINES = ("self-training (logistic regression, threshold 0.75)", "supervised only (logistic regression)")
N_ROWS, N_TEST = 3000, 5000


def load(name: str) -> tuple[pd.DataFrame, str]:
    if name == "adult":
        from synthetic_tables import TARGET, read_adult

        data = read_adult(DATA / "adult" / "adult.data")
        data[TARGET] = (data[TARGET] == ">50K").astype(int)
        return data, TARGET
    z = np.load(DATA / "adbench_dev" / f"{name[3:]}.npz", allow_pickle=False)
    data = pd.DataFrame(z["X"], columns=[f"x{i}" for i in range(z["X"].shape[1])])
    data["label"] = (z["y"].ravel() > 0).astype(int)
    return data, "label"


def draw_cell(data: pd.DataFrame, target: str, draw: int, n_labels: int):
    """One cell: the 3,000-row pool without its target, its labels (all but ``n_labels`` set to -1), the 5,000
    test rows and their labels."""
    rng = np.random.default_rng(draw)
    order = rng.permutation(len(data))
    rows = data.iloc[order[:N_ROWS]].reset_index(drop=True)
    test = data.iloc[order[N_ROWS:N_ROWS + N_TEST]].reset_index(drop=True)
    y_all, y_test = rows.pop(target).to_numpy(), test.pop(target).to_numpy()
    return rows, keep_labels(y_all, n_labels, rng), test, y_test


def run_cell(name: str, draw: int, n_labels: int, cache: Path, methods: list[str]) -> None:
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.semi_supervised import SelfTrainingClassifier

    from vaekit import SemiSupervisedClassifier

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    rows, y, test, y_test = draw_cell(*load(name), draw, n_labels)
    encode = table_encoder(rows)
    x, x_test = encode.fit_transform(rows), encode.transform(test)
    makers = {BASELINES[0]: lambda: SelfTrainingClassifier(LogisticRegression(max_iter=1000), threshold=0.75)
              .fit(x, y).predict(x_test),
              BASELINES[1]: lambda: LogisticRegression(max_iter=1000).fit(x[y >= 0], y[y >= 0]).predict(x_test)}
    for label, params in CONFIGS.items():
        makers[label] = (lambda p: lambda: SemiSupervisedClassifier(random_state=draw, **p).fit(rows, y).predict(test))(params)
    for label, make in makers.items():
        if label not in methods:
            continue
        t0 = time.perf_counter()
        pred = np.asarray(make()).astype(int)
        rec = {"data": name, "draw": draw, "labels": n_labels, "method": label,
               "error": round(100.0 * float((pred != y_test).mean()), 2), "f1": round(float(f1_score(y_test, pred)), 4),
               "seconds": round(time.perf_counter() - t0, 1)}
        with cache.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)


# labels of records written before the default changed (same parameters: {} was then classifier="mlp")
RENAMED = {"m1+m2, mlp (defaults)": "m1+m2, mlp (the session-11 default)",
           "m1+m2, linear": "m1+m2, linear (the table default)"}


def read(cache: Path) -> list[dict]:
    recs = [json.loads(line) for line in cache.read_text().splitlines()]
    return [{**r, "method": RENAMED.get(r["method"], r["method"])} for r in recs]


def error_tables(err: dict, methods: list[str]) -> list[str]:
    """Markdown: mean test error per (table, labels) cell and method (``err[(table, labels, method)]`` lists one
    error per draw), then each method's mean and the cells where it is below both baselines."""
    lines = ["| table | labels | " + " | ".join(methods) + " |", "|---|---:|" + "---:|" * len(methods)]
    for t in TABLES:
        for n in LABELS:
            cells = [err.get((t, n, m)) for m in methods]
            lines.append(f"| {t} | {n} | " + " | ".join(f"{np.mean(c):.2f}" if c else "" for c in cells) + " |")
    lines += ["", "Mean over tables and label counts, and cells where the config is below both self-training and "
              "supervised logistic regression:", "", "| method | mean error % | cells won (of 9) |", "|---|---:|---:|"]
    for m in methods:
        cells = [(np.mean(err[(t, n, m)]), min(np.mean(err[(t, n, b)]) for b in BASELINES))
                 for t in TABLES for n in LABELS if err.get((t, n, m)) and all(err.get((t, n, b)) for b in BASELINES)]
        if cells:
            won = sum(a < b for a, b in cells) if m not in BASELINES else ""
            lines.append(f"| {m} | {np.mean([a for a, _ in cells]):.2f} | {won} |")
    return lines


def report(cache: Path, out: Path) -> None:
    recs = read(cache)
    methods = list(CONFIGS) + list(BASELINES)
    err = collections.defaultdict(list)
    for r in recs:
        err[(r["data"], r["labels"], r["method"])].append(r["error"])
    lines = ["# Few labels on tables: choosing the table defaults on development tables", "",
             f"Written by `benchmarks/few_labels_tables_dev.py` (`{command()}`) on {datetime.date.today()} from the "
             f"records in `{cache.name}`. {machine()}.", "", (__doc__ or "").split("\n\n")[2].replace("\n", " "), "",
             "Test error % (mean over the table's draws):", ""] + error_tables(err, methods)
    write(out, lines)
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("run", "report"))
    p.add_argument("--tables", nargs="*", default=list(TABLES))
    p.add_argument("--cache", default=str(RESULTS / "few_labels_tables_dev.jsonl"))
    p.add_argument("--out", default=str(RESULTS / "few_labels_tables_dev.md"))
    args = p.parse_args()
    cache = Path(args.cache)
    if args.mode == "report":
        report(cache, Path(args.out))
        return
    done = set()
    if cache.exists():
        done = {(r["data"], r["draw"], r["labels"], r["method"]) for r in read(cache)}
    for i in range(max(len(d) for d in TABLES.values())):  # every table's first draw, then the second
        for name in args.tables:
            for n in LABELS:
                if i < len(TABLES[name]):
                    todo = [m for m in (*BASELINES, *CONFIGS) if (name, TABLES[name][i], n, m) not in done]
                    if todo:
                        run_cell(name, TABLES[name][i], n, cache, todo)


if __name__ == "__main__":
    main()
