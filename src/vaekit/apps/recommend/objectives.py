"""Objectives for the recommender models: pure functions returning ``vaekit.objectives.Terms``.

Mult-VAE trains with ``vaekit.objectives.elbo`` itself (beta annealed by the trainer's schedule);
the loss there is -E_q[log Mult(x | softmax(f(z)))] + beta KL, the paper's eq. 5 up to the
multinomial coefficient, which has no gradient.
"""

from __future__ import annotations

import torch

from vaekit.objectives import Terms, kl_terms


def mult_dae(model, x: torch.Tensor, y=None, *, beta: float = 0.0, free_bits: float = 0.0) -> Terms:
    """Mult-DAE (Liang et al. 2018, eq. 8): the multinomial log-likelihood of the full history given
    the code of its dropped-out, normalised copy; no KL term (``beta`` and ``free_bits`` do not
    apply; use weight decay as the regulariser). ``elbo`` here is log p(x | z = f(x)) in nats, which
    is not a bound on log p(x); ``kl`` is zero."""
    out = model(x)
    log_px_z = out.px.log_prob(x)  # (B,)
    return Terms(-log_px_z.mean(), log_px_z.detach(), log_px_z.detach(), torch.zeros_like(log_px_z))


def user_beta_elbo(model, x: torch.Tensor, y=None, *, beta: float = 1.0, free_bits: float = 0.0,
                   gamma: float = 0.005) -> Terms:
    """ELBO whose KL weight for user u is ``gamma * n_u`` (n_u = the user's number of clicks) times
    the schedule's ``beta`` / cap ratio: RecVAE's user-specific beta (Shenbin et al. 2020, eq. 9),
    so that users with long histories may move further from the prior. The reported ``elbo`` is the
    true bound (weight 1)."""
    out = model(x)
    log_px_z = out.px.log_prob(x)  # (B,)
    kl, _ = kl_terms(out.qz, out.pz, out.z)
    weight = gamma * x.sum(-1) * beta  # (B,)
    loss = -(log_px_z - weight * kl).mean()
    return Terms(loss, (log_px_z - kl).detach(), log_px_z.detach(), kl.detach())
