"""A probe, not a library feature (issue 18, few labels on tables): M1+M2 whose q(y|x) is one softmax regression on
M1's code z1 *and* the encoded table row, with an L2 penalty on the row's weights, on the development cells of
``few_labels_tables_dev.py`` (same tables, draws, label counts and test rows), against that script's records.

    python benchmarks/few_labels_wide_probe.py run --lam 0      # every cell; cached in few_labels_wide_probe.jsonl
    python benchmarks/few_labels_wide_probe.py run --lam 150
    python benchmarks/few_labels_wide_probe.py report           # -> benchmarks/results/few_labels_wide_probe.md

How: the library's ``SemiSupervisedClassifier`` (defaults: M1+M2, a table's linear classifier) with three of its
module's names replaced for the run: M1's posterior moments get the encoded row appended (scale 0, so a sample of
"z1" carries the row unchanged), M2's classifier becomes a linear layer on [z1, row], and M2's objective sees z1 only
in its bounds while the classifier sees both, plus lam / N * ||W_row||^2 (lam = alpha / 2 = 150 is the weight of
scikit-learn's default C = 1 penalty against the alpha-weighted labelled cross-entropy). Missing cells are 0.
Saving, export and serving of such a model are not handled: this measures whether the idea is worth building.
It was then built as ``SemiSupervisedClassifier(classifier="wide")`` (the table default under M1+M2, with
C = 0.1 chosen in ``few_labels_tables_dev.py``); this script stays as the record of the probe.
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

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, command, machine, write
from few_labels_tables_dev import BASELINES, LABELS, TABLES, draw_cell, error_tables, load, read

COMPARE = ("m1+m2, linear (the table default)", "m2 on the columns, linear", *BASELINES)


def wide_classifier(lam: float):
    """The estimator class with the probe's classifier, and the module patches that make it."""
    import torch
    from torch import nn

    import vaekit.apps.semisupervised.estimator as E
    from vaekit.estimators.inputs import to_model

    state: dict = {}
    moments, build, objective = E.posterior_moments, E.build_model, E.m2_objective

    def moments_and_row(m1, x):
        loc, scale = moments(m1, x)
        row = torch.nan_to_num(x.reshape(len(x), -1).float())
        state.update(L=loc.shape[1], D=row.shape[1], N=len(x))
        return torch.cat([loc, row], 1), torch.cat([scale, torch.zeros_like(row)], 1)

    class Wide(nn.Module):
        def __init__(self, n_classes: int):
            super().__init__()
            self.row, self.linear = None, nn.Linear(state["L"] + state["D"], n_classes)

        def forward(self, z):
            return self.linear(torch.cat([z, self.row.to(z.dtype)], -1) if z.shape[-1] == state["L"] else z)

    def build_wide(cfg):
        model = build(cfg)
        if cfg.family == "m2":
            model.classifier = Wide(cfg.n_classes)
        return model

    def wide_objective(model, x, y, **kwargs):
        L = state["L"]
        model.classifier.row = x[:, L:]
        terms = objective(model, x[:, :L], y, **kwargs)
        model.classifier.row = None
        penalty = lam * model.classifier.linear.weight[:, L:].pow(2).sum() / state["N"]
        return terms._replace(loss=terms.loss + penalty)

    E.posterior_moments, E.build_model, E.m2_objective = moments_and_row, build_wide, wide_objective

    class WideClassifier(E.SemiSupervisedClassifier):
        def _features(self, X):
            x = to_model(self.inputs_, X)
            z1 = E.batched(lambda b: self.m1_.encode(b).mean, x, self._device())
            return torch.cat([z1, torch.nan_to_num(x.reshape(len(x), -1).float())], 1)

    return WideClassifier


def run(lam: float, cache: Path) -> None:
    import torch
    from sklearn.metrics import f1_score

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    method = f"m1+m2, linear on [z1, row], L2 {lam:g}"
    done = {(r["data"], r["draw"], r["labels"]) for r in map(json.loads, cache.read_text().splitlines())
            if r["method"] == method} if cache.exists() else set()
    Classifier = wide_classifier(lam)
    for name, draws in TABLES.items():
        data, target = load(name)
        for draw in draws:
            for n_labels in LABELS:
                if (name, draw, n_labels) in done:
                    continue
                rows, y, test, y_test = draw_cell(data, target, draw, n_labels)  # as few_labels_tables_dev.py
                t0 = time.perf_counter()
                pred = np.asarray(Classifier(random_state=draw).fit(rows, y).predict(test)).astype(int)
                rec = {"data": name, "draw": draw, "labels": n_labels, "method": method,
                       "error": round(100.0 * float((pred != y_test).mean()), 2),
                       "f1": round(float(f1_score(y_test, pred)), 4), "seconds": round(time.perf_counter() - t0, 1)}
                with cache.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
                print(json.dumps(rec), flush=True)


def report(cache: Path, dev: Path, out: Path) -> None:
    probe = [json.loads(line) for line in cache.read_text().splitlines()]
    err = collections.defaultdict(list)
    for r in probe + [r for r in read(dev) if r["method"] in COMPARE]:
        err[(r["data"], r["labels"], r["method"])].append(r["error"])
    methods = list(dict.fromkeys(r["method"] for r in probe)) + list(COMPARE)
    lines = ["# Few labels on tables: a probe of q(y|x) on M1's code and the table row", "",
             f"Written by `benchmarks/few_labels_wide_probe.py` (`{command()}`) on {datetime.date.today()} from "
             f"`{cache.name}` and `{dev.name}`. {machine()}.", "",
             (__doc__ or "").split("\n\n")[2].replace("\n", " "), "",
             "Test error % (mean over the table's draws; the last four columns are `few_labels_tables_dev.py`'s "
             "records):", ""] + error_tables(err, methods)
    write(out, lines)
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("run", "report"))
    p.add_argument("--lam", type=float, default=150.0, help="L2 weight on the row's classifier weights (run)")
    p.add_argument("--cache", default=str(RESULTS / "few_labels_wide_probe.jsonl"))
    p.add_argument("--dev", default=str(RESULTS / "few_labels_tables_dev.jsonl"))
    p.add_argument("--out", default=str(RESULTS / "few_labels_wide_probe.md"))
    args = p.parse_args()
    if args.mode == "run":
        run(args.lam, Path(args.cache))
    else:
        report(Path(args.cache), Path(args.dev), Path(args.out))


if __name__ == "__main__":
    main()
