"""Why the density benchmark's VampPrior models use ReLU: the same 784-200-200-50 VAE on 10,000
binarized MNIST training images, 1,500 Adam steps (batch 100, lr 1e-3, beta 1), the same seed and
batches, with tanh or ReLU networks and a N(0, I) or VampPrior (K = 500, pseudo-inputs from data) prior.
Every 250 steps: the batch ELBO, KL, mean |posterior mean| and its spread between images.

    python benchmarks/vamp_collapse.py            # -> benchmarks/results/vamp_collapse.md
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

import numpy as np
import torch

from vaekit import ModelConfig, build_model
from vaekit.models import init_from_data
from vaekit.objectives import elbo

ROOT = Path(__file__).resolve().parents[1]


def run(x: torch.Tensor, activation: str, prior: str, steps: int = 1500) -> list[str]:
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
        if step % 250 == 0:
            with torch.no_grad():
                loc = model.encode(xb).mean
            rows.append(f"| {activation} | {prior} | {step} | {t.elbo.mean().item():.1f} | {t.kl.mean().item():.2f} | "
                        f"{loc.abs().mean().item():.3f} | {loc.std(0).mean().item():.3f} |")
    return rows


def main() -> None:
    torch.set_num_threads(1)
    data = np.load(ROOT.parent / "shared" / "data" / "binarized_mnist" / "binarized_mnist.npz")
    x = torch.from_numpy(data["train"][:10000].astype(np.float32))
    lines = ["# VampPrior with tanh vs ReLU networks", "",
             f"Written {datetime.datetime.now():%Y-%m-%d %H:%M} by `python benchmarks/vamp_collapse.py` "
             f"({platform.processor() or 'CPU'}, {os.cpu_count()} cores, torch {torch.__version__}). "
             "Batch ELBO and KL in nats; |loc| = mean absolute posterior mean; spread = its standard deviation "
             "between the images of the batch, averaged over latent dimensions.", "",
             "| activation | prior | step | ELBO | KL | \\|loc\\| | spread |", "|---|---|---|---|---|---|---|"]
    for activation, prior in (("tanh", "normal"), ("tanh", "vamp"), ("relu", "vamp")):
        lines += run(x, activation, prior)
    out = ROOT / "benchmarks" / "results" / "vamp_collapse.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
