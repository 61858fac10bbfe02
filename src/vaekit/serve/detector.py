"""Serving and exporting an ``AnomalyDetector``: table rows in, a score in nats and a 0/1 flag out.

The detector's own scoring (``AnomalyDetector._score_array``) answers requests; ``DetectorScore`` is the
same score as a graph for export, with the sampling noise an explicit input: for ``scoring="nll"``,
-log p(x) = -log (1/K) sum_i p(x, z_i) / q(z_i|x) with z_i = loc + scale * eps_i (Burda et al. 2015,
eq. 8), missing cells (NaN) left out of log p(x|z) by the table likelihood, plus the standardisation's
log-Jacobian of the observed cells, so the score is in nats of the original units. Higher = more anomalous.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.distributions import Independent, Normal

from vaekit.serve.graphs import Graph, Port, RowShift, log_mean_exp
from vaekit.serve.rows import to_json
from vaekit.serve.served import Served
from vaekit.serve.tables import HOW_TABLE, table_maps, table_rows, table_shift


def from_detector(det) -> Served:
    """A fitted ``AnomalyDetector`` as a ``Served``: its own score answers ``log_px`` and is its export's
    score graph (both handed over as callables, so ``served`` and ``graphs`` never import this module)."""
    to_model, to_user, shift = table_maps(det.table_)
    return Served(det.model_, f"AnomalyDetector ({det.scoring} score, contamination {det.contamination}) on a table "
                              f"of {len(det.table_['order'])} columns, latent_dim {det.model_.latent_dim}",
                  "AnomalyDetector", table_rows(det.table_), to_model=to_model, to_user=to_user, log_jacobian=shift,
                  shift_terms=table_shift(det.table_), unit="nats per row, original units",
                  metrics={"threshold": det.threshold_, "scoring": det.scoring, "contamination": det.contamination,
                           "training_score_mean": float(np.mean(det.decision_scores_))},
                  preprocessing={"table": det.table_, "how": HOW_TABLE}, application="detector", app=det,
                  log_px_fn=detector_log_px, score_graph=score_graph)


def detector_log_px(served: Served, x: torch.Tensor, *, k: int, seed: int) -> np.ndarray:
    """log p(x) per row in nats of the original units (the detector's ``nll`` score, negated)."""
    det = copy.copy(served.app)
    det.scoring, det.k = "nll", k
    return -det._score_array(x.cpu().numpy())[0]


def score_graph(served: Served, x_port: Port, eps_port: Port) -> Graph:
    """The export's ``score`` graph: (x, eps) -> (score, flag), see ``DetectorScore``."""
    return Graph("score", DetectorScore(served), [x_port, eps_port],
                 [("score", "float32 (B,): the detector's score, higher = more anomalous (nats, "
                            "original units; NaN cells in x are missing and left out)"),
                  ("flag", "bool (B,): score above the detector's threshold")])


def detect(served: Served, x: torch.Tensor) -> dict:
    det = served.app
    scores, contributions = det._score_array(x.cpu().numpy())
    unit = "squared error (standardised units)" if det.scoring == "recon_error" else "nats, original units"
    return {"score": to_json(scores, 7), "flag": [int(s > det.threshold_) for s in scores],
            "threshold": float(det.threshold_), "top_feature": [det.feature_names_[i] for i in contributions.argmax(1)],
            "scoring": det.scoring, "unit": unit, "higher": "more anomalous"}


class DetectorScore(nn.Module):
    """(x with NaN for missing cells (B, D), eps (K, B, L)) -> (score (B,), flag (B,) bool): the
    detector's ``decision_function`` with the noise of its K samples given. ``recon_error`` ignores eps."""

    def __init__(self, served: Served):
        super().__init__()
        det = served.app
        self.model, self.kind, self.threshold = det.model_, det.scoring, float(det.threshold_)
        self.shift = RowShift(**served.shift_terms)

    def forward(self, *inputs: torch.Tensor):  # x, eps
        x, eps = inputs
        q = self.model.encode(torch.nan_to_num(x, nan=0.0))
        loc, scale = q.base_dist.loc, q.base_dist.scale  # (B, L)
        if self.kind == "recon_error":
            from vaekit.apps.anomaly.scores import squared_errors

            score = squared_errors(self.model.decode(loc), x).sum(-1)
            return score, score > self.threshold
        qz = Independent(Normal(loc, scale, validate_args=False), 1)
        z = loc + scale * eps  # (K, B, L): the reparameterised samples
        log_px_z = self.model.decode(z).log_prob(x)  # (K, B), missing cells left out
        if self.kind == "nll":
            log_px = log_mean_exp(log_px_z + self.model.prior().log_prob(z) - qz.log_prob(z))
        elif self.kind == "recon_prob":
            log_px = log_mean_exp(log_px_z)
        else:  # "elbo", analytic KL
            from vaekit.objectives import kl_terms

            kl = kl_terms(qz, self.model.prior(), z)[0]  # (B,) analytic, or (K, B) Monte Carlo
            log_px = log_px_z.mean(0) - (kl.mean(0) if kl.dim() > 1 else kl)
        score = -(log_px + self.shift(x))
        return score, score > self.threshold
