"""Training and scoring for the anomaly detectors: pure functions of (model, x) over the core.

``x`` is a model array of the table likelihood (``vaekit.likelihoods.table``): NaN marks a missing
cell, which the likelihood masks out of log p(x|z). Every score is "higher = more anomalous", in nats
per row in standardised units (``recon_error`` excepted: squared error in standard deviations), and
deterministic for a given ``seed``; the estimators add the standardisation's log-scales.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaekit.config import CONSTANT_LR, ModelConfig, TrainConfig, build_model
from vaekit.evaluate import log_likelihood, seeded
from vaekit.likelihoods import feature_log_prob
from vaekit.objectives import Terms, elbo, kl_terms
from vaekit.train import fit

SCORES = ("nll", "elbo", "recon_prob", "recon_error")


def trimmed_elbo(model, x: torch.Tensor, y=None, *, trim: float = 0.0, beta: float = 1.0,
                 free_bits: float = 0.0) -> Terms:
    """The ELBO (``vaekit.objectives.elbo``) with a trimmed loss: only the (1 - ``trim``) fraction of
    the batch with the highest ELBO enters the mean, so the few anomalies in unlabelled, contaminated
    training data do not pull the model towards them. ``Terms.elbo`` still holds every row's bound."""
    t = elbo(model, x, y, beta=beta, free_bits=free_bits)
    if trim <= 0.0 or len(t.elbo) < 2:
        return t
    per_row = -t.log_px_z + beta * t.kl
    keep = max(1, math.ceil((1.0 - trim) * len(per_row)))
    return Terms(per_row.topk(keep, largest=False).values.mean(), t.elbo, t.log_px_z, t.kl)


@dataclass
class Training:
    """What the detectors share when training: the architecture and the loop's settings."""

    latent_dim: int
    hidden: tuple[int, ...]
    epochs: int
    batch_size: int
    lr: float
    patience: int
    seed: int
    device: str
    precision: str
    progress: bool
    trim: float
    min_scale: float


def train_model(x, columns: list[dict], t: Training, x_val=None):
    """Build the table-likelihood VAE for ``columns`` and train it on the model arrays ``x``."""
    config = ModelConfig(input_shape=(x.shape[1],), latent_dim=t.latent_dim, network="mlp", hidden=tuple(t.hidden),
                         likelihood="table", likelihood_options={"columns": columns, "min_scale": t.min_scale},
                         prior="normal")
    torch.manual_seed(t.seed)
    model = build_model(config)
    cfg = TrainConfig(epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, patience=t.patience if x_val is not None else 0,
                      seed=t.seed, device=t.device, precision=t.precision, progress=t.progress, **CONSTANT_LR)
    history = fit(model, torch.as_tensor(x), x_val=None if x_val is None else torch.as_tensor(x_val), config=cfg,
                  objective=lambda m, xb, yb=None, **kw: trimmed_elbo(m, xb, yb, trim=t.trim, **kw))
    return model.eval(), config, history


@torch.inference_mode()
def score_rows(model, x: torch.Tensor, *, kind: str = "nll", k: int = 100, seed: int = 0,
               features: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Anomaly score per row (N,) and per-feature contributions (N, F), on the CPU, float64.

    kind:
      - ``nll``: -log p(x), the core importance-weighted estimate with k samples;
      - ``elbo``: -ELBO averaged over k samples of z (the KL left out when ``features`` restricts x);
      - ``recon_prob``: -log (1/k) sum_l p(x|z_l), z_l ~ q(z|x), the reconstruction probability of
        An & Cho 2015 (Algorithm 4) in log space;
      - ``recon_error``: squared distance between x and E[x | z = E_q[z|x]] (standardised units;
        categorical blocks: squared distance between the one-hot row and the predicted probabilities).
    Contributions are -E[log p(x_f|z)] under the weights each score gives to the samples of z (for
    ``recon_error``, the squared error per feature). ``features`` (a 0/1 mask over features) restricts
    the score to those features, e.g. the last time step of a window.
    """
    if kind not in SCORES:
        raise ValueError(f"Unknown score {kind!r}; choose one of {', '.join(SCORES)}.")
    x = torch.as_tensor(x)
    if kind in ("nll", "recon_prob"):
        ll, c = log_likelihood(model, x, k=k, seed=seed, features=features, contributions=True,
                               weights="likelihood" if kind == "recon_prob" else None)
        return -ll.double(), c
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores, contribs = [], []
    with seeded(seed, device):
        for i in range(0, len(x), max(1, (1 << 16) // k)):
            xb = x[i: i + max(1, (1 << 16) // k)].to(device)
            if kind == "recon_error":
                c = squared_errors(model.decode(model.encode(xb).mean), xb)
                scores.append((c if features is None else c * features).sum(-1).double().cpu())
                contribs.append(c.double().cpu())
                continue
            out = model(xb, k=k)
            lp = feature_log_prob(out.px, xb)  # (k, B, F)
            kl = kl_terms(out.qz, out.pz, out.z)[0]  # (B,) analytic where torch knows the pair
            lpx = (lp if features is None else lp * features).sum(-1).mean(0)
            scores.append((-(lpx - (kl if features is None else 0.0))).double().cpu())
            contribs.append(-lp.mean(0).double().cpu())
    model.train(was_training)
    return torch.cat(scores), torch.cat(contribs)


def squared_errors(px, x: torch.Tensor) -> torch.Tensor:
    """(B, F) squared reconstruction error per feature, 0 where missing: numeric columns against the
    mean, categorical blocks as the squared distance of the one-hot row from the probabilities."""
    mean, lay = px.mean, px.layout
    px._index(x)
    x0 = torch.nan_to_num(x)
    out = torch.zeros(*x.shape[:-1], lay.n_features, dtype=mean.dtype, device=x.device)
    if len(lay.num_at):
        e = (x0[..., lay.num_at] - mean[..., lay.num_at]) ** 2
        out[..., lay.num_col] = torch.where(torch.isfinite(x[..., lay.num_at]), e, torch.zeros_like(e))
    if len(lay.cat_first):
        d = ((x0[..., lay.cat_index] - mean[..., lay.cat_index]) ** 2).masked_fill(lay.cat_pad, 0.0).sum(-1)
        out[..., lay.cat_col] = torch.where(torch.isfinite(x[..., lay.cat_first]), d, torch.zeros_like(d))
    return out
