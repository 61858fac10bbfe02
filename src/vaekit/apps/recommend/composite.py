"""RecVAE's composite prior and alternating updates (Shenbin et al. 2020, sec. 3.2 and 3.5).

The KL term of the encoder's loss is taken against a per-user prior that mixes, per latent dimension,

    p(z_d | x) = 3/20 N(0, 1) + 3/4 q_old(z_d | x) + 1/10 N(0, e^10)

where q_old is the encoder as it was at the end of the previous epoch (a frozen copy, input dropout
off), so each epoch's posterior stays near the last one. The KL weight of user u is ``gamma * n_u``
(n_u = the user's clicks) times the schedule's ``beta``. Each epoch makes encoder passes (input
dropout on, the decoder frozen), then decoder passes (dropout off, the encoder frozen); the phase
arrives from ``vaekit.apps.recommend.batches.phased_loader`` as ``y``.

The composite prior is a training regulariser: the model that is saved and scored keeps the
standard normal prior, so ``Terms.elbo`` and ``Terms.kl`` (reported) are the true ELBO and
KL(q || N(0, I)) in nats, while ``Terms.loss`` uses the composite KL (one-sample estimate
log q(z|x) - log p(z|x) at the sampled z, as in the paper).
"""

from __future__ import annotations

import copy
import math

import torch
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal
from torch.func import functional_call

from vaekit.objectives import Terms, kl_terms

WEIGHTS = (3 / 20, 3 / 4, 1 / 10)  # N(0, 1), q_old(z|x), the wide Gaussian (the paper's code)
WIDE_LOG_VAR = 10.0  # log variance of the wide component


def composite_prior(old: Distribution, *, weights=WEIGHTS, wide_log_var: float = WIDE_LOG_VAR) -> Distribution:
    """The per-dimension mixture above, batch shape (B,), event shape (L,), given q_old(z|x) (a
    diagonal Gaussian with loc and scale (B, L))."""
    base = old.base_dist if isinstance(old, Independent) else old
    loc, scale = base.loc.detach(), base.scale.detach()  # (B, L)
    zeros, ones = torch.zeros_like(loc), torch.ones_like(scale)
    locs = torch.stack([zeros, loc, zeros], -1)  # (B, L, 3)
    scales = torch.stack([ones, scale, ones * math.exp(wide_log_var / 2)], -1)
    mix = Categorical(probs=torch.tensor(weights, dtype=loc.dtype, device=loc.device).expand_as(locs))
    return Independent(MixtureSameFamily(mix, Normal(locs, scales, validate_args=False), validate_args=False), 1)


class OldPosterior:
    """q_old(z|x): a frozen copy of ``model.encoder``. ``refresh`` is a ``vaekit.train.fit``
    callback that copies the current encoder into it after every epoch."""

    def __init__(self, model):
        self.encoder = copy.deepcopy(model.encoder).requires_grad_(False).eval()

    def refresh(self, record: dict, model) -> bool:
        self.encoder.load_state_dict(model.encoder.state_dict())
        return False  # never stops training

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> Distribution:
        self.encoder.to(x.device)
        return self.encoder(x, dropout=False)


def frozen(model, part: str) -> dict:
    """The parameters of sub-module ``part`` (by name) detached: passed to ``functional_call`` so
    that a step updates only the other part."""
    return {n: p.detach() for n, p in model.named_parameters() if part in n.split(".")}


def composite_elbo(model, x: torch.Tensor, y: torch.Tensor | None = None, *, beta: float = 1.0,
                   free_bits: float = 0.0, old: OldPosterior, gamma: float = 0.005, weights=WEIGHTS,
                   wide_log_var: float = WIDE_LOG_VAR) -> Terms:
    """RecVAE's loss -E_q[log p(x|z)] + gamma n_u beta (log q(z|x) - log p_composite(z|x)), per user,
    averaged. ``y``: the step's phase, (B,) all 0 (encoder step: decoder frozen, input dropout) or
    all 1 (decoder step: encoder frozen, no dropout); None trains both with dropout. ``free_bits``
    does not apply."""
    phase = None if y is None else int(y[0])
    if phase is None:
        out = model(x)
    else:
        out = functional_call(model, frozen(model, "decoder" if phase == 0 else "encoder"), (x,),
                              {"dropout": phase == 0})
    log_px_z = out.px.log_prob(x)  # (B,) nats
    kl, _ = kl_terms(out.qz, out.pz, out.z)  # KL(q || N(0, I)), (B,), reported
    prior = composite_prior(old(x), weights=weights, wide_log_var=wide_log_var)
    kl_composite = out.qz.log_prob(out.z) - prior.log_prob(out.z)  # (B,) one-sample estimate
    weight = gamma * x.sum(-1) * beta  # (B,)
    loss = -(log_px_z - weight * kl_composite).mean()
    return Terms(loss, (log_px_z - kl).detach(), log_px_z.detach(), kl.detach())
