"""Few labels at every size (issue 18): ``vaekit.SemiSupervisedClassifier()`` with its defaults against
scikit-learn's LabelSpreading, self-training and a supervised-only model, on MNIST subsets.

Data: the 10,000 labelled MNIST images of ``../shared/data/mnist_partial``, split once (seed 0) into
8,000 training and 2,000 test images and binarised at 0.5, exactly as ``benchmarks/semisupervised.py``.
A cell is (training images N, labels per class L): for each draw d, N of the 8,000 training images are
taken at random (seed d) and L of them per class keep their label (the rest get y = -1); every method
sees the same rows and labels and is scored on the same 2,000 test images (error %). Cells: N in 1,000,
3,000, 8,000 with 5 and 10 labels per class, and N = 8,000 with 100 per class (1,000 labels).

    python benchmarks/few_labels.py                  # draws 1 and 2, 2 worker processes
    python benchmarks/few_labels.py --draws 1 --cells 1000:5 --out /tmp/few.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from common import DATA, RESULTS, command, cpu, write

CELLS = "1000:5,1000:10,3000:5,3000:10,8000:5,8000:10,8000:100"
METHODS = ("vaekit SemiSupervisedClassifier() defaults", "LabelSpreading (knn, 10 neighbours)",
           "self-training (logistic regression, threshold 0.75)", "supervised only (logistic regression)")


def cell_rows(n: int, per_class: int, draw: int, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row indices into the 8,000 training images, their labels with -1 for the unlabelled)."""
    rng = np.random.default_rng(draw)
    rows = rng.permutation(len(y))[:n]
    labels = np.full(n, -1)
    for k in range(10):
        labels[rng.choice(np.flatnonzero(y[rows] == k), per_class, replace=False)] = k
    return rows, labels


def run_cell(task: tuple[int, int, int, str]) -> dict:
    """One (N, labels per class, draw) cell, every method; runs in a worker process (1 torch thread)."""
    import torch

    torch.set_num_threads(1)
    import warnings

    from semisupervised import load_mnist
    from sklearn.linear_model import LogisticRegression
    from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier

    from vaekit import SemiSupervisedClassifier

    warnings.simplefilter("ignore")
    n, per_class, draw, data = task
    x_tr, y_tr, x_te, y_te = load_mnist(Path(data))
    rows, labels = cell_rows(n, per_class, draw, y_tr)
    x, known = x_tr[rows], labels >= 0
    out = {"n": n, "per_class": per_class, "draw": draw, "error": {}, "seconds": {}}

    def score(name, make):
        t0 = time.perf_counter()
        pred = make()
        out["seconds"][name] = round(time.perf_counter() - t0, 1)
        out["error"][name] = round(100.0 * float((np.asarray(pred) != y_te).mean()), 2)

    score(METHODS[0], lambda: SemiSupervisedClassifier(random_state=draw).fit(x, labels).predict(x_te))
    score(METHODS[1], lambda: LabelSpreading(kernel="knn", n_neighbors=10, max_iter=100).fit(x, labels).predict(x_te))
    score(METHODS[2], lambda: SelfTrainingClassifier(LogisticRegression(max_iter=1000), threshold=0.75)
          .fit(x, labels).predict(x_te))
    score(METHODS[3], lambda: LogisticRegression(max_iter=1000).fit(x[known], labels[known]).predict(x_te))
    print(json.dumps(out), flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DATA / "mnist_partial"))
    p.add_argument("--cells", default=CELLS, help="N:labels-per-class, comma-separated")
    p.add_argument("--draws", type=int, default=2)
    p.add_argument("--first-draw", type=int, default=1,
                   help="draw 0 (seed 0) was used in choosing the defaults, so the reported draws start at 1")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (1 torch thread each)")
    p.add_argument("--out", default=str(RESULTS / "few_labels.md"))
    args = p.parse_args(argv)
    started, t0 = datetime.datetime.now(datetime.timezone.utc), time.time()
    cells = [tuple(int(v) for v in c.split(":")) for c in args.cells.split(",")]
    draws = range(args.first_draw, args.first_draw + args.draws)
    tasks = [(n, per, d, args.data) for d in draws for n, per in sorted(cells, key=lambda c: -c[0] * c[1])]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_cell, tasks))
    write(Path(args.out), report(results, cells, args, argv, started, time.time() - t0))
    return 0


def report(results: list[dict], cells, args, argv, started, wall: float) -> list[str]:
    from vaekit import SemiSupervisedClassifier

    def cell(n, per, name, key="error"):
        return [r[key][name] for r in results if r["n"] == n and r["per_class"] == per]

    lines = ["# Few labels at every size: MNIST subsets", "",
             f"Command: `{command(argv)}`  ", f"Date: {started:%Y-%m-%d %H:%M} UTC  ",
             f"Machine: {cpu()}; {args.jobs} worker processes with 1 torch thread each on 2 cores; wall time "
             f"{wall / 60:.1f} min", "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "Methods: `vaekit.SemiSupervisedClassifier(random_state=draw)` with every other setting at its default "
             f"({SemiSupervisedClassifier().method}, {SemiSupervisedClassifier().epochs} epochs); scikit-learn `LabelSpreading(kernel='knn', n_neighbors=10)` on all N rows; "
             "`SelfTrainingClassifier(LogisticRegression(max_iter=1000), threshold=0.75)`; "
             "`LogisticRegression(max_iter=1000)` on the labelled rows only. Test error (%), mean ± sd over "
             f"{args.draws} draws, seeds {args.first_draw}-{args.first_draw + args.draws - 1} (the number of draws in "
             "brackets). Draw 0 (seed 0) was used when the defaults were chosen (M1+M2 against M2 on 1,000 and 3,000 "
             "images, and 100 against 50 epochs), so it is not reported here.", "",
             "| N images | labels per class | " + " | ".join(METHODS) + " |", "|---|---|" + "---|" * len(METHODS)]
    for n, per in cells:
        vals = [cell(n, per, m) for m in METHODS]
        lines.append(f"| {n} | {per} | " + " | ".join(
            f"{np.mean(v):.2f} ± {np.std(v):.2f} ({len(v)})" if v else "" for v in vals) + " |")
    lines += ["", "Fit seconds (mean over draws):", "", "| N images | labels per class | " + " | ".join(METHODS) + " |",
              "|---|---|" + "---|" * len(METHODS)]
    for n, per in cells:
        lines.append(f"| {n} | {per} | " + " | ".join(f"{np.mean(cell(n, per, m, 'seconds')):.1f}" for m in METHODS) + " |")
    lines += ["", "Issue 18's targets: below LabelSpreading's and self-training's error in every cell; 100 labels "
              "(10 per class) on 8,000 images at most 8%.", ""]
    for n, per in cells:
        ours = np.mean(cell(n, per, METHODS[0]))
        others = {m: np.mean(cell(n, per, m)) for m in METHODS[1:3]}
        ok = all(ours < v for v in others.values())
        lines.append(f"- N {n}, {per} per class: {ours:.2f}% vs " + ", ".join(f"{m.split(' (')[0]} {v:.2f}%"
                     for m, v in others.items()) + (" (met)" if ok else " (MISSED)"))
    if (8000, 10) in cells:
        e = np.mean(cell(8000, 10, METHODS[0]))
        lines.append(f"- 100 labels on 8,000 images: {e:.2f}% " + ("(met)" if e <= 8 else "(MISSED: target <= 8%)"))
    lines += ["", "Per draw (error %):", "", "```"]
    lines += [json.dumps({k: r[k] for k in ("n", "per_class", "draw", "error")}) for r in results]
    return lines + ["```"]


if __name__ == "__main__":
    raise SystemExit(main())
