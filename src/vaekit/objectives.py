"""Objectives: pure functions of (model, data). Signs follow the names: ``elbo`` is higher-is-better,
``loss`` is minimised. All per-example quantities are in nats."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch.distributions import Distribution, Independent, Normal, kl_divergence


class Terms(NamedTuple):
    loss: torch.Tensor  # scalar to minimise (uses beta and free bits)
    elbo: torch.Tensor  # (B,) the bound on log p(x) in nats: true ELBO (beta = 1) or IWAE_k
    log_px_z: torch.Tensor  # (B,) E_q[log p(x|z)]
    kl: torch.Tensor  # (B,) KL(q(z|x) || p(z)), analytic or a one-sample Monte Carlo estimate


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


def elbo(model, x: torch.Tensor, y: torch.Tensor | None = None, *, beta: float = 1.0,
         free_bits: float = 0.0, analytic_kl: bool = True) -> Terms:
    """ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z)) (Kingma & Welling 2014, eq. 3), one sample of z.

    The loss weights the KL by ``beta``; ``free_bits`` (nats per latent dimension, averaged over the
    batch; Kingma et al. 2016, eq. 15) stops the loss from pushing a dimension's KL below it. The
    reported ``elbo`` is always the true bound (beta = 1, no free bits).
    """
    qz, z, px, pz = run(model, x, y)
    log_px_z = px.log_prob(x)  # (B,)
    kl, kl_dims = kl_terms(qz, pz, z, analytic=analytic_kl)
    if free_bits > 0 and kl_dims is not None:
        kl_for_loss = kl_dims.mean(0).clamp(min=free_bits).sum()
    elif free_bits > 0:
        kl_for_loss = kl.mean().clamp(min=free_bits * z.shape[-1])
    else:
        kl_for_loss = kl.mean()
    loss = -log_px_z.mean() + beta * kl_for_loss
    return Terms(loss, log_px_z - kl, log_px_z, kl)


def log_weights(model, x, y=None, *, k: int):
    """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), z_i ~ q(z|x), i = 1..k. Shapes (k, B)."""
    qz, z, px, pz = run(model, x, y, k=k)
    log_px_z = px.log_prob(x)
    log_pz, log_qz = pz.log_prob(z), qz.log_prob(z)
    return log_px_z + log_pz - log_qz, log_px_z, log_qz - log_pz


def iwae_bound(model, x: torch.Tensor, y: torch.Tensor | None = None, *, k: int) -> Terms:
    """IWAE_k = log (1/k) sum_i w_i (Burda et al. 2015, eq. 8); IWAE_1 is the ELBO and IWAE_k rises
    towards log p(x) as k grows. ``kl`` is the Monte Carlo KL averaged over the k samples."""
    log_w, log_px_z, kl = log_weights(model, x, y, k=k)
    bound = torch.logsumexp(log_w, 0) - math.log(k)  # (B,)
    return Terms(-bound.mean(), bound, log_px_z.mean(0), kl.mean(0))


OBJECTIVES = {"elbo": elbo, "iwae": iwae_bound}
