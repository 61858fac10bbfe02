"""Features worth using (issue 18): linear-probe accuracy of VAE posterior means against PCA and raw
pixels on grey MNIST.

Data: the 10,000 labelled MNIST images in ``../shared/data/mnist_partial`` (the MNIST test set), grey
levels scaled to [0, 1], split once (seed 0, the split of ``benchmarks/semisupervised.py``) into 8,000
training and 2,000 test images. For every latent size d: ``vaekit.VAE(d, ...)`` fitted on the training
images (labels unused), features = posterior means (``transform``); PCA with d components fitted on the
same images; raw pixels as a reference. The probe is a logistic regression on standardised features whose
C is chosen by 3-fold cross-validation on the training rows only; it is trained on all training rows and
scored once on the test images.

VAE variants are first compared on a validation split of the training images only (the last
``--val`` of them; the VAE and the probe see the rest), at d = ``--select-dim``; the variant with the best
validation accuracy is then run at every d on the full protocol, beside the library defaults (the same
images as a flat (N, 784) matrix and as (N, 28, 28) images with an MLP).

    python benchmarks/features.py                                   # full run (wall time in the results file)
    python benchmarks/features.py --smoke --out /tmp/features.md    # a minute: 2 epochs, few rows
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from common import DATA, RESULTS, header, write
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vaekit import VAE
from vaekit.data.readers import read_idx

DIMS = (8, 16, 32, 64)
CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)  # the probe's inverse L2 strength, chosen by cross-validation
# name -> (label, keyword arguments of vaekit.VAE besides latent_dim, images passed as (N, 28, 28)?).
# "default" is the estimator as a user calls it on the same (N, 784) matrix PCA gets: with no options
# that is an MLP (784-512-256-d) with a Gaussian likelihood of learned per-pixel scale on standardised
# pixels, 50 epochs.
VARIANTS = {
    "default": ("library defaults on the (N, 784) matrix (MLP, Gaussian, per-pixel standardisation and scales)",
                {}, False),
    "bernoulli": ("likelihood='bernoulli' (cross-entropy on grey levels)", {"likelihood": "bernoulli"}, False),
    "bernoulli-beta0.5": ("likelihood='bernoulli', beta=0.5", {"likelihood": "bernoulli", "beta": 0.5}, False),
    "bernoulli-150": ("likelihood='bernoulli', epochs=150", {"likelihood": "bernoulli", "epochs": 150}, False),
    "images": ("28x28 images, library defaults (conv network, Gaussian, one shared scale: the image default)",
               {}, True),
    "images-beta0.5": ("28x28 images, library defaults but beta=0.5", {"beta": 0.5}, True),
    "images-mlp": ("28x28 images, network='mlp' (Gaussian, one shared scale)", {"network": "mlp"}, True),
    "conv": ("28x28 images (conv network, Gaussian, one shared scale), epochs=20", {"epochs": 20}, True),
    "conv-bernoulli": ("28x28 images (conv network), likelihood='bernoulli', epochs=20",
                       {"likelihood": "bernoulli", "epochs": 20}, True),
    "conv-bernoulli-beta0.5": ("28x28 images (conv network), likelihood='bernoulli', beta=0.5, epochs=20",
                               {"likelihood": "bernoulli", "beta": 0.5, "epochs": 20}, True),
    "conv-bernoulli-lr2e-3": ("28x28 images (conv network), likelihood='bernoulli', lr=2e-3, epochs=20",
                              {"likelihood": "bernoulli", "lr": 2e-3, "epochs": 20}, True),
    "conv-bernoulli-mixture": ("28x28 images (conv network), likelihood='bernoulli', prior='mixture', epochs=20",
                               {"likelihood": "bernoulli", "prior": "mixture", "epochs": 20}, True),
    "conv-bernoulli-ch64": ("28x28 images (conv network, channels 64 and 128), likelihood='bernoulli', epochs=20",
                            {"likelihood": "bernoulli", "channels": (64, 128), "epochs": 20}, True),
}


def load_mnist(folder: Path) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test): 8,000 / 2,000 grey images in [0, 1], (N, 28, 28), seed-0 split."""
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(labels))
    x_all = images[perm].astype(np.float32) / 255.0
    y_all = labels[perm]
    return x_all[:8000], y_all[:8000], x_all[8000:], y_all[8000:]


def probe(z_tr: np.ndarray, y_tr: np.ndarray, z_te: np.ndarray, y_te: np.ndarray) -> tuple[float, float]:
    """(accuracy in %, chosen C): standardise, logistic regression, C by 3-fold CV on the training rows."""
    search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                          {"logisticregression__C": list(CS)}, cv=StratifiedKFold(3, shuffle=True, random_state=0))
    search.fit(z_tr.reshape(len(z_tr), -1), y_tr)
    return 100.0 * search.score(z_te.reshape(len(z_te), -1), y_te), search.best_params_["logisticregression__C"]


def vae_features(variant: str, d: int, x_tr: np.ndarray, x_te: np.ndarray, args) -> tuple[np.ndarray, ...]:
    """(train features, test features, seconds to fit) of one VAE variant with latent size d."""
    _, options, images = VARIANTS[variant]
    options = dict(options)
    if args.epochs_scale != 1.0:
        options["epochs"] = max(1, round(options.get("epochs", VAE().epochs) * args.epochs_scale))
    shape = (-1, 28, 28) if images else (-1, 784)
    t = time.perf_counter()
    model = VAE(d, random_state=args.seed, **options).fit(x_tr.reshape(shape))
    seconds = time.perf_counter() - t
    return model.transform(x_tr.reshape(shape)), model.transform(x_te.reshape(shape)), seconds


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DATA / "mnist_partial")
    p.add_argument("--dims", type=int, nargs="+", default=list(DIMS))
    p.add_argument("--variants", nargs="+", default=["images", "conv-bernoulli", "conv-bernoulli-beta0.5",
                                                     "conv-bernoulli-lr2e-3", "conv-bernoulli-mixture",
                                                     "conv-bernoulli-ch64"],
                   choices=sorted(VARIANTS), help="VAE variants compared on the validation split")
    p.add_argument("--select-dim", type=int, default=32, help="latent size of the validation comparison")
    p.add_argument("--val", type=int, default=1500, help="training images held out for validation")
    p.add_argument("--val-only", action="store_true", help="stop after the validation comparison")
    p.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every variant's epochs")
    p.add_argument("--n-train", type=int, default=0, help="use only this many training images (0: all)")
    p.add_argument("--seed", type=int, default=0, help="VAE random_state")
    p.add_argument("--smoke", action="store_true", help="quick check: dims 8 16, 2 epochs, 2,000 training rows")
    p.add_argument("--out", type=Path, default=RESULTS / "features.md")
    args = p.parse_args(argv)
    if args.smoke:
        args.dims, args.epochs_scale, args.n_train, args.val = [8, 16], 0.04, 2000, 500
        args.select_dim = 16
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    x_tr, y_tr, x_te, y_te = load_mnist(args.data)
    if args.n_train:
        x_tr, y_tr = x_tr[:args.n_train], y_tr[:args.n_train]
    n_fit = len(x_tr) - args.val

    # 1. the variants on the validation split (the test images are not touched here)
    val_rows = {}
    for variant in args.variants:
        z_fit, z_val, seconds = vae_features(variant, args.select_dim, x_tr[:n_fit], x_tr[n_fit:], args)
        acc, c = probe(z_fit, y_tr[:n_fit], z_val, y_tr[n_fit:])
        val_rows[variant] = (acc, c, seconds)
        log("validation", variant, f"{acc:.2f}%", f"C={c}", f"{seconds:.0f}s")
    pca = PCA(args.select_dim, random_state=0).fit(x_tr[:n_fit].reshape(n_fit, -1))
    pca_val = probe(pca.transform(x_tr[:n_fit].reshape(n_fit, -1)), y_tr[:n_fit],
                    pca.transform(x_tr[n_fit:].reshape(len(x_tr) - n_fit, -1)), y_tr[n_fit:])
    log("validation PCA", pca_val)
    chosen = max(val_rows, key=lambda v: val_rows[v][0])
    if args.val_only:
        return

    # 2. the full protocol: library defaults and the chosen variant at every d, PCA, raw pixels
    # the library defaults as a user meets them (a flat matrix, and images passed as images), and the chosen
    test_variants = list(dict.fromkeys(["default", "images", chosen]))
    table: dict[str, dict[int, tuple[float, float, float]]] = {v: {} for v in test_variants}
    table["pca"] = {}
    flat_tr, flat_te = x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1)
    for d in args.dims:
        for variant in test_variants:
            z_tr, z_te, seconds = vae_features(variant, d, x_tr, x_te, args)
            table[variant][d] = (*probe(z_tr, y_tr, z_te, y_te), seconds)
            log("test", variant, d, table[variant][d])
        pca = PCA(d, random_state=0).fit(flat_tr)
        table["pca"][d] = (*probe(pca.transform(flat_tr), y_tr, pca.transform(flat_te), y_te), 0.0)
        log("test pca", d, table["pca"][d])
    raw = probe(flat_tr, y_tr, flat_te, y_te)
    log("test raw", raw)
    report(args, argv, t_start, val_rows, pca_val, chosen, table, raw, len(x_tr), len(x_te), n_fit)


def report(args, argv, t_start, val_rows, pca_val, chosen, table, raw, n_train, n_test, n_fit) -> None:
    dims = args.dims
    scale = "" if args.epochs_scale == 1.0 else f" (every variant's epochs multiplied by {args.epochs_scale})"
    lines = header("Features worth using: linear probes of VAE features, PCA and pixels (grey MNIST)", argv,
                   time.perf_counter() - t_start)
    lines += [
        f"Data: the labelled MNIST images of `mnist_partial` (the MNIST test set), grey levels scaled to [0, 1], "
        f"split once (seed 0, as in `benchmarks/semisupervised.py`) into {n_train:,} training and {n_test:,} test "
        f"images. VAE features: posterior means (`transform`) of `vaekit.VAE(d, random_state={args.seed}, ...)` "
        f"fitted on the training images without labels{scale}; images passed as an (N, 784) matrix unless the row "
        "says 28x28. PCA: scikit-learn `PCA(d)` fitted on the training images. Probe: `StandardScaler` + "
        f"`LogisticRegression`, C chosen from {list(CS)} by 3-fold cross-validation on the training rows only, "
        "then refitted on all of them; test accuracy (%) on the test images, measured once. One VAE seed per cell. "
        "`likelihood='bernoulli'` on grey levels is the usual cross-entropy, not a normalised density of grey "
        "images: only its features are used here.",
        "",
        f"## Choice of the VAE variant (validation only, d = {args.select_dim})",
        "",
        f"Fitted on the first {n_fit:,} training images, scored on the other {n_train - n_fit:,} training "
        "images; the test images are not used here.",
        "",
        "| VAE variant | validation accuracy (%) | probe C | fit s |",
        "|---|---|---|---|",
        *(f"| {VARIANTS[v][0]} | {a:.2f} | {c:g} | {s:.0f} |" for v, (a, c, s) in val_rows.items()),
        f"| PCA, {args.select_dim} components (for reference) | {pca_val[0]:.2f} | {pca_val[1]:g} | |",
        "",
        f"Chosen (highest validation accuracy): {VARIANTS[chosen][0]}.",
        "",
        "## Test accuracy (%) of the linear probe",
        "",
        "| features | " + " | ".join(f"d = {d}" for d in dims) + " | all 784 pixels |",
        "|---" * (len(dims) + 2) + "|",
    ]
    for key, cells in table.items():
        name = "PCA, d components" if key == "pca" else f"VAE: {VARIANTS[key][0]}"
        lines.append(f"| {name} | " + " | ".join(f"{cells[d][0]:.2f}" for d in dims) + " | |")
    lines.append("| raw pixels | " + " | ".join("" for _ in dims) + f" | {raw[0]:.2f} |")
    lines += ["", "Probe C chosen by cross-validation, and VAE fit seconds:", "",
              "| features | " + " | ".join(f"d = {d}" for d in dims) + " |", "|---" * (len(dims) + 1) + "|"]
    for key, cells in table.items():
        name = "PCA" if key == "pca" else f"VAE: {VARIANTS[key][0]}"
        lines.append(f"| {name} | " + " | ".join(
            f"C {cells[d][1]:g}" + ("" if key == "pca" else f", {cells[d][2]:.0f} s") for d in dims) + " |")
    lines.append(f"| raw pixels (784) | C {raw[1]:g} |" + " |" * (len(dims) - 1))
    if 32 in dims:
        lines += ["", "Issue 18's target: VAE features at d = 32 at least 3 points above PCA with 32 components.", ""]
        for key in table:
            if key != "pca":
                gap = table[key][32][0] - table["pca"][32][0]
                lines.append(f"- {VARIANTS[key][0]}: {gap:+.2f} points ({'met' if gap >= 3 else 'not met'})")
    write(args.out, lines)
    log("wrote", args.out)


if __name__ == "__main__":
    main()
