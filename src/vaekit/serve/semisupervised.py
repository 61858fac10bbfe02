"""Serving and exporting an M1+M2 ``SemiSupervisedClassifier`` (Kingma et al. 2014) as one model of x.

``M1M2`` wraps the fitted M1 and M2 so that the service and the exporter read it as they read any model:
- its latent vector is M1's code z1: ``encode`` is q(z1|x) (its mean is the estimator's ``transform``)
  and ``decode`` is M1's p(x|z1), so a reconstruction goes through M1;
- its density is M1's importance-weighted log p(x) (the estimator's ``score_samples``): M1 is the model
  of x, while M2's bound is on z1, not on x;
- ``classify(x)`` is M2's q(y|z1) at z1 = E[z1|x] (the estimator's ``predict_proba``);
- ``sample_latent(n, y)`` is z1 = E[z1|y,z] under M2's decoder with z ~ p(z), which M1's decoder turns
  into x (the estimator's ``sample``).
Only sampling reads a label (``Served.sample_condition``); the export adds a ``sampler`` graph
(z, y) -> (z1, E[x|z1]) to the encoder, decoder, score and classifier graphs.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Categorical, Distribution

from vaekit.serve.graphs import Graph, Port
from vaekit.serve.served import Served

UNIT = "nats per example, original units: M1's importance-weighted log p(x) (M2 models M1's code z1, not x)"
SAMPLING = "z ~ N(0, I), z1 = E[z1|y,z] under M2's decoder, x from M1's decoder given z1"


class M1M2(nn.Module):
    """M1 (a VAE of x, latent z1) and M2 (a semi-supervised VAE of z1, latent z) as one model of x."""

    def __init__(self, m1: nn.Module, m2: nn.Module):
        super().__init__()
        self.m1, self.m2 = m1, m2
        self.event_shape, self.latent_dim, self.layer_sizes = m1.event_shape, m1.latent_dim, m1.layer_sizes
        self.n_classes = int(m2.n_classes)

    @property
    def prior(self) -> nn.Module:
        return self.m1.prior

    @property
    def likelihood(self) -> nn.Module:
        return self.m1.likelihood

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Distribution:
        """q(z1|x) under M1 (y is not read)."""
        return self.m1.encode(x)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> Distribution:
        """p(x|z1) under M1 (y is not read)."""
        return self.m1.decode(z)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, *, k: int | None = None):
        """M1's record, so that the importance-weighted log p(x) is M1's."""
        return self.m1(x, k=k)

    def classify(self, x: torch.Tensor) -> Categorical:
        """q(y|x) = M2's q(y|z1) at z1 = E[z1|x] under M1, batch (B,); a wide q(y|x) also reads the row
        (missing cells at 0)."""
        from vaekit.apps.semisupervised.estimator import wide_input

        code = self.m1.encode(x).mean
        return self.m2.classify(wide_input(code, x) if self.m2.side_dim else code)

    def generate(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """E[z1|y,z] under M2's decoder, (B, m1 latent_dim): the code of a row of class y."""
        return self.m2.likelihood.mean(self.m2.decode(z, y))

    def sample_latent(self, n: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """z1 to decode into new rows: z ~ p(z), then ``generate``; y ~ p(y) (M2's class prior) if not given."""
        z = self.m2.sample_latent(n)  # (n, m2 latent_dim)
        if y is None:
            y = self.m2.sample_labels(n).to(z.device)
        return self.generate(z, y.to(z.device))


class Sampler(nn.Module):
    """(z, y) -> (z1, E[x|z1]): the estimator's ``sample(mean=True)`` with M2's z given."""

    def __init__(self, model: M1M2):
        super().__init__()
        self.model = model

    def forward(self, *inputs):  # z, y
        z1 = self.model.generate(inputs[0], inputs[1])
        return z1, self.model.likelihood.mean(self.model.decode(z1))


def sampler_graphs(served: Served, b: int) -> list[Graph]:
    model = served.model
    L, L1 = model.m2.latent_dim, model.latent_dim
    event = ", ".join(map(str, served.event_shape))
    inputs = [Port("z", torch.randn(b, L), {0: "batch"}, f"float32 (B, {L}): M2's latent vector, z ~ N(0, I)"),
              Port("y", torch.arange(b) % max(1, len(served.class_names)), {0: "batch"},
                   f"int64 (B,): label index into {served.class_names[:10]}")]
    return [Graph("sampler", Sampler(model), inputs,
                  [("z1", f"float32 (B, {L1}): E[z1|y,z] under M2's decoder, M1's latent code (the decoder's z)"),
                   ("mean", f"float32 (B, {event}): E[x|z1] in model space, a new row of class y")])]


def from_m1m2(est, source: str, **rows) -> Served:
    """A fitted M1+M2 classifier as a ``Served``; ``rows``: its row description, maps and log-Jacobian,
    the same as for ``vaekit.VAE`` on the same data (``loading.from_front_door``)."""
    model = M1M2(est.m1_, est.model_)
    classes = [str(c) for c in est.classes_]
    history = getattr(est, "history_", None)
    best = getattr(history, "best_val_elbo", None)
    metrics = {"M2's best validation ELBO (nats per example of z1, not of x)": best} \
        if best is not None and math.isfinite(best) else {}
    inputs = est.inputs_
    name = (f"semi-supervised M1+M2 ({source}): M1 on rows of shape {list(inputs.input_shape)}, {inputs.likelihood} "
            f"likelihood, latent z1 of {model.latent_dim}; M2 on z1, latent_dim {model.m2.latent_dim}, "
            f"{len(classes)} classes")
    return Served(model, name, source, sample_condition="label", class_names=classes, unit=UNIT, metrics=metrics,
                  details={"method": "m1+m2", "m2_latent_dim": int(model.m2.latent_dim), "sampling": SAMPLING},
                  extra_graphs=sampler_graphs, **rows)
