"""Masked likelihoods and anomaly scores: pure functions of (model, x).

``x`` is a model array (numeric features, then one-hot blocks for categorical features); NaN marks a
missing value. The decoder's Gaussian ``loc`` gives the mean of each numeric feature and the logits of
each categorical block, so one network models mixed tables. Missing features are masked out of
log p(x|z) (Nazabal et al. 2020, HI-VAE; Xu et al. 2018, Donut "modified ELBO"), never imputed into it;
the encoder sees them as 0 (the training mean).

Every score is "higher = more anomalous", in nats per row (``recon_error`` excepted: squared error in
standard deviations), and deterministic for a given ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.distributions import Normal

from vaekit.evaluate import seeded
from vaekit.objectives import Terms, kl_terms

SCORES = ("nll", "elbo", "recon_prob", "recon_error")


def feature_log_probs(px, x: torch.Tensor, *, n_numeric: int, groups: Sequence[tuple[int, int]],
                      min_scale: float = 0.0) -> torch.Tensor:
    """log p(x_f | z) per modelled feature, (*batch, F) in nats; 0 where x_f is missing.

    Numeric features: Normal(loc, max(scale, min_scale)); categorical blocks: softmax(loc) over the
    block (the last slot stands for categories unseen at fit time).
    """
    base = px.base_dist  # Normal over the model array, batch (*batch, D)
    loc, scale = base.loc, base.scale
    observed = torch.isfinite(x)
    x0 = torch.nan_to_num(x, nan=0.0)
    parts = []
    if n_numeric:
        s = scale[..., :n_numeric].clamp(min=min_scale) if min_scale > 0 else scale[..., :n_numeric]
        lp = Normal(loc[..., :n_numeric], s, validate_args=False).log_prob(x0[..., :n_numeric])
        parts.append(torch.where(observed[..., :n_numeric], lp, torch.zeros_like(lp)))
    for start, size in groups:
        logp = F.log_softmax(loc[..., start : start + size], -1)
        lp = (logp * x0[..., start : start + size]).sum(-1, keepdim=True)
        parts.append(torch.where(observed[..., start : start + 1], lp, torch.zeros_like(lp)))
    return torch.cat(parts, -1)


def masked_elbo(model, x: torch.Tensor, y=None, *, n_numeric: int, groups: Sequence[tuple[int, int]],
                min_scale: float = 0.0, trim: float = 0.0, beta: float = 1.0, free_bits: float = 0.0) -> Terms:
    """ELBO with missing features masked out of the likelihood (one z sample), as ``Terms``; a
    training objective for ``vaekit.train.fit``. ``free_bits`` is ignored.

    ``trim`` in [0, 1): the loss averages only the (1 - trim) fraction of the batch with the highest
    ELBO (a trimmed likelihood), so the few anomalies in unlabelled, contaminated training data do not
    pull the model towards them; ``Terms.elbo`` still holds every row's bound."""
    qz, z, px, pz = model(torch.nan_to_num(x, nan=0.0))
    log_px_z = feature_log_probs(px, x, n_numeric=n_numeric, groups=groups, min_scale=min_scale).sum(-1)
    kl, _ = kl_terms(qz, pz, z)
    per_row = -log_px_z + beta * kl
    if trim > 0.0 and len(per_row) > 1:
        keep = max(1, math.ceil((1.0 - trim) * len(per_row)))
        per_row = per_row.topk(keep, largest=False).values
    return Terms(per_row.mean(), log_px_z - kl, log_px_z, kl)


@torch.inference_mode()
def score_rows(model, x: torch.Tensor, *, kind: str = "nll", k: int = 100, n_numeric: int,
               groups: Sequence[tuple[int, int]], min_scale: float = 0.0, seed: int = 0,
               features: torch.Tensor | None = None, max_rows: int = 1 << 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Anomaly score per row (N,) and per-feature contributions (N, F), on the CPU, float64.

    kind:
      - ``nll``: -log p(x), importance-weighted with k samples from q(z|x) (Burda et al. 2015, eq. 8);
      - ``elbo``: -ELBO, E_q[log p(x|z)] averaged over k samples, analytic KL;
      - ``recon_prob``: -log (1/k) sum_l p(x|z_l), z_l ~ q(z|x), the reconstruction probability of
        An & Cho 2015 (Algorithm 4) in log space;
      - ``recon_error``: squared distance between x and E[x | z = E_q[z|x]] (standardised units;
        categorical blocks: squared distance between the one-hot row and the predicted probabilities).
    Contributions are -E[log p(x_f|z)] under the weights each score gives to the samples of z (for
    ``recon_error``, the squared error per feature). ``features`` (a boolean mask over features)
    restricts the score to those features, e.g. the last time step of a window.
    """
    if kind not in SCORES:
        raise ValueError(f"Unknown score {kind!r}; choose one of {', '.join(SCORES)}.")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    batch = max(1, max_rows // (1 if kind == "recon_error" else k))
    scores, contribs = [], []
    opts = {"n_numeric": n_numeric, "groups": groups, "min_scale": min_scale}
    with seeded(seed, device):
        for i in range(0, len(x), batch):
            xb = x[i : i + batch].to(device)
            qz = model.encode(torch.nan_to_num(xb, nan=0.0))
            if kind == "recon_error":
                c = squared_errors(model.decode(qz.mean), xb, n_numeric=n_numeric, groups=groups)
                keep = c if features is None else c * features
                scores.append(keep.sum(-1).double().cpu())
                contribs.append(c.double().cpu())
                continue
            z = qz.rsample((k,))  # (k, B, L)
            lp = feature_log_probs(model.decode(z), xb, **opts)  # (k, B, F)
            lpx = (lp if features is None else lp * features).sum(-1)  # (k, B)
            if kind == "nll":
                pz = model.prior()
                log_w = lpx + pz.log_prob(z) - qz.log_prob(z)
            elif kind == "recon_prob":
                log_w = lpx
            if kind == "elbo":
                kl, _ = kl_terms(qz, model.prior(), z)
                score = -(lpx.mean(0) - (kl if features is None else 0.0))
                w = torch.full_like(lpx, 1.0 / k)
            else:
                score = -(torch.logsumexp(log_w, 0) - math.log(k))
                w = torch.softmax(log_w, 0)  # self-normalised importance weights over the k samples
            scores.append(score.double().cpu())
            contribs.append(-(w.unsqueeze(-1) * lp).sum(0).double().cpu())
    model.train(was_training)
    return torch.cat(scores), torch.cat(contribs)


def squared_errors(px, x: torch.Tensor, *, n_numeric: int, groups: Sequence[tuple[int, int]]) -> torch.Tensor:
    """(B, F) squared reconstruction error per feature, 0 where missing."""
    loc = px.base_dist.loc
    observed = torch.isfinite(x)
    x0 = torch.nan_to_num(x, nan=0.0)
    num = (x0[..., :n_numeric] - loc[..., :n_numeric]) ** 2
    parts = [torch.where(observed[..., :n_numeric], num, torch.zeros_like(num))]
    for start, size in groups:
        p = torch.softmax(loc[..., start : start + size], -1)
        e = ((x0[..., start : start + size] - p) ** 2).sum(-1, keepdim=True)
        parts.append(torch.where(observed[..., start : start + 1], e, torch.zeros_like(e)))
    return torch.cat(parts, -1)
