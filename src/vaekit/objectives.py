"""Objectives: pure functions of (model, data) over the shared model record (``vaekit.models.Output``).

Signs follow the names: ``elbo`` is higher-is-better, ``loss`` is minimised. All per-example
quantities are in nats. Every function works on every model: the KL and the importance weights sum
over the model's stochastic layers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch.distributions import Distribution, Independent, Normal, kl_divergence


class Terms(NamedTuple):
    loss: torch.Tensor  # scalar to minimise (uses beta and free bits)
    elbo: torch.Tensor  # (B,) the bound on log p(x) in nats: true ELBO (beta = 1) or IWAE_k
    log_px_z: torch.Tensor  # (B,) E_q[log p(x|z)]
    kl: torch.Tensor  # (B,) sum over layers of KL(q || p), analytic or a one-sample Monte Carlo estimate


def run(model, x, y=None, **kwargs):
    return model(x, **kwargs) if y is None else model(x, y, **kwargs)


def normal_base(d: Distribution) -> Normal | None:
    base = d.base_dist if isinstance(d, Independent) else d
    return base if isinstance(base, Normal) else None


def kl_terms(qz: Distribution, pz: Distribution, z: torch.Tensor, *, analytic: bool = True):
    """KL(q || p) per example, and per latent dimension when both are diagonal Gaussians (else None).

    Analytic when torch knows the pair; otherwise log q(z) - log p(z) at the sample z.
    """
    q, p = normal_base(qz), normal_base(pz)
    if analytic and q is not None and p is not None:
        per_dim = kl_divergence(q, p)  # (B, L)
        return per_dim.sum(-1), per_dim
    if analytic:
        try:
            return kl_divergence(qz, pz), None
        except NotImplementedError:
            pass
    return qz.log_prob(z) - pz.log_prob(z), None


def kl_for_loss(kl: torch.Tensor, kl_dims: torch.Tensor | None, free_bits: float, size: int) -> torch.Tensor:
    """A layer's batch-mean KL as the loss sees it: with ``free_bits`` (nats per latent dimension,
    Kingma et al. 2016, eq. 15) floored per dimension where the KL factorises, else on the layer's
    total (free_bits x layer size)."""
    if free_bits <= 0:
        return kl.mean()
    if kl_dims is not None:
        return kl_dims.mean(0).clamp(min=free_bits).sum()
    return kl.mean().clamp(min=free_bits * size)


def elbo(model, x: torch.Tensor, y: torch.Tensor | None = None, *, beta: float = 1.0,
         free_bits: float = 0.0, analytic_kl: bool = True) -> Terms:
    """ELBO = E_q[log p(x|z)] - sum_l KL(q_l || p_l) (Kingma & Welling 2014, eq. 3), one sample of z.

    For a hierarchical model each layer's KL is taken at the sample of the layers above it
    (Tomczak & Welling 2018, eq. 18). The loss weights the KL by ``beta``; ``free_bits`` stops the loss
    from pushing a layer's KL below it (``kl_for_loss``). The reported ``elbo`` is always the true bound
    (beta = 1, no free bits).
    """
    out = run(model, x, y)
    log_px_z = out.px.log_prob(x)  # (B,)
    kl = torch.zeros_like(log_px_z)
    kl_loss = torch.zeros((), device=log_px_z.device)
    for layer in out.layers:
        kl_l, dims = kl_terms(layer.q, layer.p, layer.z, analytic=analytic_kl)
        kl = kl + kl_l
        kl_loss = kl_loss + kl_for_loss(kl_l, dims, free_bits, layer.z.shape[-1])
    loss = -log_px_z.mean() + beta * kl_loss
    return Terms(loss, log_px_z - kl, log_px_z, kl)


def log_weights(model, x, y=None, *, k: int):
    """log w_i = log p(x|z_i) + sum_l [log p_l(z_l,i) - log q_l(z_l,i)], z_i ~ q, i = 1..k.

    Returns (log_w, log_px_z, log q - log p), each (k, B), and the record they came from."""
    out = run(model, x, y, k=k)
    log_px_z = out.px.log_prob(x)
    log_q_over_p = sum(layer.q.log_prob(layer.z) - layer.p.log_prob(layer.z) for layer in out.layers)
    return log_px_z - log_q_over_p, log_px_z, log_q_over_p, out


def iwae_bound(model, x: torch.Tensor, y: torch.Tensor | None = None, *, k: int, beta: float = 1.0,
               free_bits: float = 0.0) -> Terms:
    """IWAE_k = log (1/k) sum_i w_i (Burda et al. 2015, eq. 8); IWAE_1 is the ELBO and IWAE_k rises
    towards log p(x) as k grows. ``kl`` is the Monte Carlo KL averaged over the k samples. Usable as a
    training objective (beta and free bits do not apply)."""
    log_w, log_px_z, kl, _ = log_weights(model, x, y, k=k)
    bound = torch.logsumexp(log_w.float(), 0) - math.log(k)  # (B,)
    return Terms(-bound.mean(), bound, log_px_z.mean(0), kl.mean(0))


OBJECTIVES = {"elbo": elbo, "iwae": iwae_bound}
