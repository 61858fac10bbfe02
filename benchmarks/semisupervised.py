"""Semi-supervised MNIST with 100 and 1,000 labels (Kingma et al. 2014 protocol on our data), measured
on the shipped estimators: ``vaekit.SemiSupervisedClassifier`` (M2, M1+M2) and ``vaekit.VAE`` +
``vaekit.linear_probe`` (M1 + logistic regression).

The 10,000 labelled MNIST images in ``../shared/data/mnist_partial`` (the MNIST test set; no train
images exist there) are split once (seed 0) into 8,000 training and 2,000 test images, binarised at 0.5.
For each label count and each label draw (balanced: n/10 per class), the rest of the training part is
unlabelled (y = -1), and we report the test error of: a supervised-only network (MLP on the labelled
rows), scikit-learn's LabelSpreading, M1 (VAE features + logistic regression), M2 and M1+M2. Also:
linear-probe accuracy (all 8,000 training labels) of VAE features vs PCA vs the same number of raw
pixels, and class consistency of conditional samples, judged by an MLP trained on all 8,000 labelled
images. The file ends with these numbers beside the committed ones of the earlier, hand-assembled
pipeline (read from ``--compare``, a committed results file).

    python benchmarks/semisupervised.py                     # 5 draws for every arm
    python benchmarks/semisupervised.py --draws 1 --m1-epochs 2 --m2-epochs 1 --m1m2-epochs 2 --out /tmp/s.md
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import DATA, RESULTS, ROOT, header, write
from sklearn.decomposition import PCA
from sklearn.neural_network import MLPClassifier
from sklearn.semi_supervised import LabelSpreading

from vaekit import VAE, SemiSupervisedClassifier, linear_probe
from vaekit.data.readers import read_idx
from vaekit.plots import image_grid, save_png

METHODS = ["supervised MLP", "LabelSpreading", "M1 + logistic regression", "M2", "M1+M2"]
# The committed results of the hand-assembled pipeline (build_m2 + fit_m2, one shared M1), last
# written at this commit.
COMPARE = "6152769:benchmarks/results/semisupervised.md"
PER_CLASS = 100  # conditional samples per class


def load_mnist(folder: Path) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test): 8,000 / 2,000 images (seed-0 split), binarised at 0.5."""
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz").reshape(-1, 784)
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(labels))
    x_all = (images[perm] > 127).astype(np.float32)
    y_all = labels[perm]
    return x_all[:8000], y_all[:8000], x_all[8000:], y_all[8000:]


def draw_labels(y: np.ndarray, n_labels: int, seed: int) -> np.ndarray:
    """n_labels / 10 labelled rows per class; -1 elsewhere."""
    rng = np.random.default_rng(seed)
    out = np.full(len(y), -1)
    for k in range(10):
        out[rng.choice(np.flatnonzero(y == k), n_labels // 10, replace=False)] = k
    return out


def classifier(method: str, args, seed: int) -> SemiSupervisedClassifier:
    """The shipped estimator with the sizes and epochs of the earlier benchmark (see ``settings``)."""
    common = {"batch_size": 128, "lr": 1e-3, "precision": args.precision, "random_state": seed,
              "likelihood": "bernoulli", "network": "mlp"}
    if method == "M2":
        return SemiSupervisedClassifier("m2", latent_dim=32, hidden=(256,), epochs=args.m2_epochs, **common)
    return SemiSupervisedClassifier("m1+m2", latent_dim=16, m1_latent_dim=32, hidden=(args.m1m2_hidden,),
                                    epochs=args.m1m2_epochs, m1_epochs=args.m1_epochs, **common)


def settings(args) -> str:
    m1m2 = args.m1m2_hidden
    return (
        "Settings: supervised MLP = scikit-learn MLPClassifier(256 hidden, L2 1e-3) on the labelled rows only; "
        "LabelSpreading(knn, 10 neighbours) on all 8,000 rows; M1 = `vaekit.VAE(32, hidden=(256,), "
        f"epochs={args.m1_epochs}, batch_size=128, precision='{args.precision}')` fitted once (random_state 0) "
        "on the 8,000 training images (labels unused), posterior means (`transform`) + logistic regression on "
        "standardised features; M2 = `SemiSupervisedClassifier('m2', latent_dim=32, hidden=(256,), "
        f"epochs={args.m2_epochs})` on pixels; M1+M2 = `SemiSupervisedClassifier('m1+m2', latent_dim=16, "
        f"m1_latent_dim=32, hidden=({m1m2},), epochs={args.m1m2_epochs}, m1_epochs={args.m1_epochs})`, which "
        f"trains its own M1 (784-{m1m2}-32) on the rows it is given, then M2 (32-{m1m2}-16, Gaussian "
        "likelihood) on samples z1 ~ q(z1|x); both classifiers with batch_size=128, lr=1e-3, "
        f"precision='{args.precision}', random_state = draw index, alpha = 0.1 N (the library default), "
        "likelihood='bernoulli', network='mlp'. An epoch is one pass over the unlabelled images; each step "
        "takes 128 unlabelled and 128 labelled images (all labelled ones when fewer); Adam.")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DATA / "mnist_partial"))
    p.add_argument("--labels", default="100,1000")
    p.add_argument("--draws", type=int, default=5, help="label draws for every arm but M2")
    p.add_argument("--m2-draws", type=int, default=5, help="label draws on which M2 on pixels runs")
    p.add_argument("--m1-epochs", type=int, default=40)
    p.add_argument("--m2-epochs", type=int, default=10)
    p.add_argument("--m1m2-epochs", type=int, default=40)
    p.add_argument("--m1m2-hidden", type=int, default=256, help="hidden width of M1+M2's networks (M1 and M2)")
    p.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--compare", default=COMPARE, help="REV:PATH of the committed results to set beside ours")
    p.add_argument("--out", default=str(RESULTS / "semisupervised.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.time()
    x_tr, y_tr, x_te, y_te = load_mnist(Path(args.data))

    def log(*a):
        print(f"[{time.time() - t_start:7.1f}s]", *a, flush=True)

    def err(pred) -> float:
        return 100.0 * float((np.asarray(pred) != y_te).mean())

    # M1 for the "M1 + logistic regression" arm and the probes: one VAE on the 8,000 training images.
    m1 = VAE(32, hidden=(256,), likelihood="bernoulli", network="mlp", epochs=args.m1_epochs, batch_size=128,
             precision=args.precision, random_state=0).fit(x_tr)
    z1_tr, z1_te = m1.transform(x_tr), m1.transform(x_te)
    log("M1 trained")
    dim = z1_tr.shape[1]
    pca = PCA(dim, random_state=0).fit(x_tr)
    top = np.argsort(x_tr.var(0))[::-1][:dim]
    probes = {f"VAE (M1) posterior means, {dim} dims": linear_probe(z1_tr, y_tr, z1_te, y_te, max_iter=1000),
              f"PCA, {dim} dims": linear_probe(pca.transform(x_tr), y_tr, pca.transform(x_te), y_te, max_iter=1000),
              f"raw pixels, the {dim} with the highest variance": linear_probe(x_tr[:, top], y_tr, x_te[:, top], y_te,
                                                                              max_iter=1000),
              "raw pixels, all 784 (reference)": linear_probe(x_tr, y_tr, x_te, y_te, max_iter=1000)}
    probes = {k: 100.0 * v for k, v in probes.items()}
    log("probes", probes)
    judge = MLPClassifier((256,), alpha=1e-3, max_iter=60, random_state=0).fit(x_tr, y_tr)
    judge_err = 100.0 * (1 - judge.score(x_te, y_te))
    log("judge error", judge_err)

    errors: dict[tuple[int, str], list[float]] = {}
    consistency: dict[tuple[int, str], float] = {}
    out = Path(args.out)
    for d in range(args.draws):  # draws outside: a stopped run still covers every label count
        for n_labels in [int(v) for v in args.labels.split(",")]:
            y_semi = draw_labels(y_tr, n_labels, seed=1000 * n_labels + d)
            lab = y_semi >= 0
            mlp = MLPClassifier((256,), alpha=1e-3, max_iter=500, random_state=d).fit(x_tr[lab], y_tr[lab])
            errors.setdefault((n_labels, METHODS[0]), []).append(err(mlp.predict(x_te)))
            ls = LabelSpreading(kernel="knn", n_neighbors=10, max_iter=100).fit(x_tr, y_semi)
            errors.setdefault((n_labels, METHODS[1]), []).append(err(ls.predict(x_te)))
            # M1 + LR: the probe on the labelled rows only (linear_probe leaves y = -1 out), as an error.
            acc = linear_probe(z1_tr, y_semi, z1_te, y_te, max_iter=2000)
            errors.setdefault((n_labels, METHODS[2]), []).append(100.0 * (1 - acc))
            for name in ("M1+M2", "M2"):
                if name == "M2" and d >= args.m2_draws:
                    continue
                t0 = time.time()
                clf = classifier(name, args, d).fit(x_tr, y_semi)
                errors.setdefault((n_labels, name), []).append(err(clf.predict(x_te)))
                log(f"{n_labels} labels, draw {d}, {name}: {errors[(n_labels, name)][-1]:.2f}% "
                    f"({time.time() - t0:.0f} s)")
                if d == 0:
                    y_gen = np.repeat(np.arange(10), PER_CLASS)
                    x_gen = clf.sample(len(y_gen), y=y_gen, mean=True, random_state=0).reshape(len(y_gen), 784)
                    consistency[(n_labels, name)] = 100.0 * float((judge.predict(x_gen) == y_gen).mean())
                    grid = x_gen.reshape(10, PER_CLASS, 1, 28, 28)[:, :10].reshape(100, 1, 28, 28)
                    save_png(image_grid(np.clip(grid, 0, 1), 10), out.parent / png_name(name, n_labels))
            log(n_labels, "labels, draw", d, {m: round(v[-1], 2) for (n, m), v in errors.items()
                                               if n == n_labels and len(v) == d + 1})
            report(args, argv, t_start, errors, probes, consistency, judge_err)
    log("done")
    return 0


def png_name(model: str, n_labels: int) -> str:
    return f"semisupervised_samples_{model.lower().replace('+', '')}_{n_labels}.png"


def order(key: tuple[int, str]) -> tuple[int, int]:
    """(labels, method) in table order."""
    return key[0], METHODS.index(key[1]) if key[1] in METHODS else len(METHODS)


def cell(e) -> str:
    e = np.asarray(e, dtype=float)
    return "not run" if not len(e) else f"{e.mean():.2f} ± {e.std(ddof=1) if len(e) > 1 else 0:.2f} ({len(e)})"


def report(args, argv, t_start, errors, probes, consistency, judge_err) -> None:
    runs = {n: len(errors[(n, METHODS[0])]) for n, m in errors if m == METHODS[0]}
    lines = header("Semi-supervised MNIST: 100 and 1,000 labels", argv, time.time() - t_start)
    lines += [
        ("Data: the 10,000 labelled MNIST images of `mnist_partial` (the MNIST test set; no train images "
         "exist there), binarised at 0.5, split once (seed 0) into 8,000 training and 2,000 test images. "
         "Balanced label draws (n/10 per class); the other training images are unlabelled. Test error (%) "
         "on the 2,000 test images, mean ± standard deviation over the draws run (count in brackets). "
         f"Draws requested: {args.draws} (M2 on pixels: {min(args.draws, args.m2_draws)}); draws finished "
         "so far per label count: " + ", ".join(f"{n} labels {k}" for n, k in sorted(runs.items())) + "."), "",
        settings(args), "",
        "| labels | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    for n_labels in sorted({n for n, _ in errors}):
        lines.append(f"| {n_labels} | " + " | ".join(cell(errors.get((n_labels, m), [])) for m in METHODS) + " |")
    lines += ["", "Per-draw test errors (%):", "", *(f"- {n} labels, {m}: {', '.join(f'{v:.2f}' for v in e)}"
                                                    for (n, m), e in sorted(errors.items(), key=lambda kv: order(kv[0]))), "",
              "## Linear probe (logistic regression on standardised features, all 8,000 training labels)", "",
              "| features | test accuracy (%) |", "|---|---|", *(f"| {k} | {v:.2f} |" for k, v in probes.items()),
              "", "## Class consistency of conditional samples", "",
              (f"{PER_CLASS} samples per class (`clf.sample(..., y=class, mean=True, random_state=0)`: z ~ N(0, I), "
               "decoded mean E[x|y,z], through M1's decoder for M1+M2) from the classifiers of label draw 0, judged "
               "by an MLPClassifier(256, 60 iterations) trained on all 8,000 labelled training images (its test "
               f"error: {judge_err:.2f}%). The PNGs show the first 10 samples of each class, one row per class."), "",
              "| labels | model | class-consistent (%) | samples |", "|---|---|---|---|",
              *(f"| {n} | {m} | {v:.1f} | {png_name(m, n)} |" for (n, m), v in sorted(consistency.items())), "",
              "## Targets (issue 7)", "", *targets(errors, consistency), "",
              *comparison(args.compare, errors, consistency, probes)]
    write(args.out, lines)


def targets(errors, consistency) -> list[str]:
    run = [m for m in ("M2", "M1+M2") if (100, m) in errors]
    if not run or (100, "supervised MLP") not in errors:
        return ["(100-label arms not run yet)"]
    best = min(run, key=lambda m: np.mean(errors[(100, m)]))
    e_best, e_sup = np.mean(errors[(100, best)]), np.mean(errors[(100, "supervised MLP")])
    cons = consistency.get((100, best), float("nan"))

    def ok(c):
        return "met" if c else "MISSED"
    return [f"- 100 labels, best of M2/M1+M2 ({best}) test error {e_best:.2f}% <= 8%: {ok(e_best <= 8)}",
            (f"- ... at least 15 points below the supervised-only network ({e_sup:.2f}%): "
             f"{e_sup - e_best:.2f} points, {ok(e_sup - e_best >= 15)}"),
            f"- conditional samples of {best} (100 labels) >= 90% class-consistent: {cons:.1f}%, {ok(cons >= 90)}"]


# -- the committed results of the hand-assembled pipeline, side by side ---------------------------------
def committed(spec: str) -> tuple[str, dict, dict, dict, str]:
    """(command, per-draw errors, consistency, probes, error) parsed from ``REV:PATH`` of this repository."""
    try:
        text = subprocess.run(["git", "-C", str(ROOT), "show", spec], capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        return "", {}, {}, {}, f"could not read {spec} ({e})"
    cmd = next((m.group(1) for m in re.finditer(r"^Command: `(.*)`", text, re.M)), "?")
    per_draw = {(int(n), m): [float(v) for v in vals.split(", ")]
                for n, m, vals in re.findall(r"^- (\d+) labels, (.+?): ([\d., ]+)$", text, re.M)}
    cons = {(int(n), m): float(v) for n, m, v in re.findall(r"^\| (\d+) \| (M2|M1\+M2) \| ([\d.]+) \|", text, re.M)}
    probes = {k: float(v) for k, v in re.findall(r"^\| ((?:VAE|PCA|raw)[^|]*?) \| ([\d.]+) \|$", text, re.M)}
    return cmd, per_draw, cons, probes, ""


def comparison(spec: str, errors, consistency, probes) -> list[str]:
    cmd, old, old_cons, old_probes, problem = committed(spec)
    lines = ["## Beside the committed results of the hand-assembled pipeline", ""]
    if problem:
        return [*lines, f"Not compared: {problem}."]
    lines += [(f"Committed numbers: `{spec}` (git revision:path), measured by the earlier version of this "
               f"script (`build_m2` + `fit_m2`, one shared M1 of seed 0 for M1 and M1+M2, M1+M2's M2 32-128-16, "
               f"float32 on the machine named in that file), command `{cmd}`. Differences in the means are "
               "shown with their standard error (sqrt(s1²/n1 + s2²/n2) over the draws)."), "",
              "| labels | method | committed: hand-assembled | now: shipped estimators | now - committed (± s.e.) |",
              "|---|---|---|---|---|"]
    for (n, m) in sorted(set(old) | set(errors), key=order):
        a, b = np.asarray(old.get((n, m), []), float), np.asarray(errors.get((n, m), []), float)
        diff = "-"
        if len(a) > 1 and len(b) > 1:
            se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
            diff = f"{b.mean() - a.mean():+.2f} ± {se:.2f}"
        elif len(a) and len(b):
            diff = f"{b.mean() - a.mean():+.2f}"
        lines.append(f"| {n} | {m} | {cell(a)} | {cell(b)} | {diff} |")
    lines += ["", "| class consistency (%) | committed | now |", "|---|---|---|"]
    for key in sorted(set(old_cons) | set(consistency)):
        lines.append(f"| {key[0]} labels, {key[1]} | {old_cons.get(key, float('nan')):.1f} | "
                     f"{consistency.get(key, float('nan')):.1f} |")
    lines += ["", "| linear probe accuracy (%) | committed | now |", "|---|---|---|"]
    for key in probes:
        lines.append(f"| {key} | {old_probes.get(key, float('nan')):.2f} | {probes[key]:.2f} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
