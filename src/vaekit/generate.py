"""Generation with any model of the shared contract: samples, reconstructions, decoded latents,
traversals and interpolations, all in model space (``vaekit.data.outputs`` maps them to user units)."""

from __future__ import annotations

import torch

from vaekit.evaluate import posterior_means


@torch.inference_mode()
def decode_mean(model, z: torch.Tensor, y=None) -> torch.Tensor:
    """E[x|z] for latent vectors z (N, latent_dim)."""
    device = next(model.parameters()).device
    px = model.decode(z.float().to(device)) if y is None else model.decode(z.float().to(device), y.to(device))
    return model.likelihood.mean(px).float().cpu()


def reconstruct(model, x: torch.Tensor, y=None) -> torch.Tensor:
    """E[x | z = E_q[z|x]]."""
    return decode_mean(model, posterior_means(model, x, y), y)


@torch.inference_mode()
def sample(model, n: int, *, seed: int = 0, mean: bool = True) -> torch.Tensor:
    """z ~ p(z) (ancestrally for hierarchical models), then E[x|z] or x ~ p(x|z)."""
    if int(n) < 0:
        raise ValueError(f"The number of samples must be 0 or more, got {n}.")
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        px = model.decode(model.sample_latent(int(n)).to(device))
        return (model.likelihood.mean(px) if mean else model.likelihood.sample(px)).float().cpu()


def traversal_latents(latent_dim: int, dims: list[int], *, steps: int = 9, span: float = 3.0,
                      base: torch.Tensor | None = None) -> torch.Tensor:
    """(len(dims) * steps, L): one row per dimension, that dimension swept over [-span, span]
    (one step: the centre only)."""
    base = torch.zeros(latent_dim) if base is None else base
    values = torch.linspace(-span, span, steps) if steps > 1 else torch.zeros(max(steps, 0))
    z = base.repeat(len(dims), len(values), 1)  # (dims, steps, L)
    for i, d in enumerate(dims):
        z[i, :, d] = values
    return z.reshape(-1, latent_dim)


def interpolation_latents(za: torch.Tensor, zb: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """``steps`` points from za to zb (both ends included; 0 steps: the two end points only)."""
    t = torch.linspace(0, 1, max(steps, 2))[:, None]
    return (1 - t) * za + t * zb
