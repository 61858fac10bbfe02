"""Why the density benchmark's VampPrior models use ReLU: the same 784-200-200-50 VAE on 10,000
binarized MNIST training images, 1,500 Adam steps by default (batch 100, lr 1e-3, beta 1), the same seed and
batches, with tanh or ReLU networks and a N(0, I) or VampPrior (K = 500, pseudo-inputs from data) prior.
Every 250 steps: the batch ELBO, KL, mean |posterior mean| and its spread between images.

    python benchmarks/vamp_collapse.py            # -> benchmarks/results/vamp_collapse.md
    python benchmarks/vamp_collapse.py --steps 20 --every 10 --out /tmp/v.md   # smoke test
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import DATA, RESULTS, header, write

from vaekit import ModelConfig, build_model
from vaekit.models import init_from_data
from vaekit.objectives import elbo


def run(x: torch.Tensor, activation: str, prior: str, steps: int = 1500, every: int = 250) -> list[str]:
    torch.manual_seed(0)
    model = build_model(ModelConfig(input_shape=(784,), latent_dim=50, hidden=(200, 200), activation=activation,
                                    prior=prior, prior_components=500))
    init_from_data(model, x)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    rows = []
    for step in range(steps + 1):
        xb = x[torch.randint(0, len(x), (100,))]
        t = elbo(model, xb)
        opt.zero_grad()
        t.loss.backward()
        opt.step()
        if step % every == 0:
            with torch.no_grad():
                loc = model.encode(xb).mean
            rows.append(f"| {activation} | {prior} | {step} | {t.elbo.mean().item():.1f} | {t.kl.mean().item():.2f} | "
                        f"{loc.abs().mean().item():.3f} | {loc.std(0).mean().item():.3f} |")
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--every", type=int, default=250, help="report every N steps")
    p.add_argument("--out", default=str(RESULTS / "vamp_collapse.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    data = np.load(DATA / "binarized_mnist" / "binarized_mnist.npz")
    x = torch.from_numpy(data["train"][:10000].astype(np.float32))
    rows = []
    for activation, prior in (("tanh", "normal"), ("tanh", "vamp"), ("relu", "vamp")):
        rows += run(x, activation, prior, args.steps, args.every)
    lines = header("VampPrior with tanh vs ReLU networks", argv, time.perf_counter() - started)
    lines += [f"{args.steps:,} Adam steps per model. Batch ELBO and KL in nats; |loc| = mean absolute posterior "
              "mean; spread = its standard deviation between the images of the batch, averaged over latent "
              "dimensions.", "",
              "| activation | prior | step | ELBO | KL | \\|loc\\| | spread |", "|---|---|---|---|---|---|---|", *rows]
    write(args.out, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
