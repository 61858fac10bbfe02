"""Baseline density on static binarized MNIST: the classic 784-200-200-50 MLP VAE (Burda et al. 2015
architecture, Bernoulli likelihood, standard normal prior), trained with vaekit's ``fit``.

Reports the test ELBO and the importance-weighted log-likelihood (k samples) in nats and bits/dim,
and writes ``benchmarks/results/mnist_baseline.md``.

    python benchmarks/mnist_baseline.py --epochs 50 --k 1000
    python benchmarks/mnist_baseline.py --epochs 1 --k 5 --n-test 200 --out /tmp/b.md   # smoke test
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from common import DATA, RESULTS, command, load, machine, now, write

from vaekit import ModelConfig, TrainConfig, active_units, build_model, fit
from vaekit.evaluate import dataset_elbo, log_likelihood


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DATA)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=10000, help="test images (the first N) for ELBO and log p(x)")
    p.add_argument("--activation", default="tanh")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)")
    p.add_argument("--out", type=Path, default=RESULTS / "mnist_baseline.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    data = np.load(args.data_dir / "binarized_mnist" / "binarized_mnist.npz")
    x_train, x_val, x_test = (torch.from_numpy(data[s].astype(np.float32)) for s in ("train", "valid", "test"))
    x_test = x_test[: args.n_test]
    cfg = ModelConfig(input_shape=(784,), latent_dim=50, hidden=(200, 200), activation=args.activation,
                      likelihood="bernoulli", prior="normal")
    torch.manual_seed(args.seed)
    model = build_model(cfg)
    train_cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=1e-3, seed=args.seed,
                            precision="fp32", progress=False)
    t0 = time.perf_counter()
    history = fit(model, x_train, x_val=x_val, config=train_cfg)
    train_s = time.perf_counter() - t0
    for r in history.records[:: max(1, len(history.records) // 10)]:
        print(f"epoch {r['epoch']:3d}  train ELBO {r['train_elbo']:8.2f}  val ELBO {r['val_elbo']:8.2f} nats", flush=True)

    test = dataset_elbo(model, x_test)
    t0 = time.perf_counter()
    ll = log_likelihood(model, x_test, k=args.k)
    iw_s = time.perf_counter() - t0
    nll = float(-ll.double().mean())
    rows = {
        "test ELBO (nats)": f"{test['elbo']:.2f}",
        f"test log p(x), IWAE k={args.k} (nats)": f"{-nll:.2f}",
        "test NLL (nats)": f"{nll:.2f}",
        "test NLL (bits/dim)": f"{nll / (784 * math.log(2)):.4f}",
        "test KL (nats)": f"{test['kl']:.2f}",
        "active units (of 50)": str(active_units(model, x_test)),
        "best validation ELBO (nats)": f"{history.best_val_elbo:.2f} (epoch {history.best_epoch})",
        "training time": f"{train_s:.0f} s ({train_s / args.epochs:.1f} s/epoch)",
        f"IWAE k={args.k} evaluation time ({len(x_test):,} images)": f"{iw_s:.0f} s",
    }
    lines = [
        "# Baseline: 784-200-200-50 MLP VAE on static binarized MNIST", "",
        f"- command: `{command()}`",
        f"- date: {now()}",
        f"- machine: {machine()}; {load()} at the end of the run",
        f"- model: MLP 784-200-200-50 ({args.activation}), Bernoulli likelihood, N(0, I) prior; Adam(W) lr 1e-3, "
        f"batch {args.batch_size}, {args.epochs} epochs, float32, seed {args.seed}",
        f"- data: 50,000 train / 10,000 validation / {len(x_test):,} test images (Larochelle static binarization)", "",
        "| metric | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows.items()], "",
        "Published figures for this architecture: ../shared/REFERENCES.md (not measured here).", "",
    ]
    write(args.out, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
