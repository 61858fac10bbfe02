"""A saved model ready to answer requests: the model plus what maps user rows to it and back.

``Served`` is the one interface the service, the explorer and the exporter read, whatever saved the
model (``vaekit train``, ``vaekit.VAE``, ``AnomalyDetector``, the semi-supervised classifier or
``vaekit.io.save_model``); ``vaekit.serve.loading.open_model`` builds it. Every model follows the
model contract: ``encode(x, y)`` -> posterior over the latent vector, ``decode(z, y)`` -> p(x|z),
``likelihood.mean(px)``, ``prior()``. Densities returned here are in nats per example in the user's
units (the preprocessing's log-Jacobian is added). ``condition`` is what the encoder, decoder and
density read; ``sample_condition`` a label that only sampling reads (M1+M2: ``vaekit.serve.semisupervised``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from vaekit.serve.rows import BadInput, RowSpec, covariates, finite, labels

CHUNK = 1024  # rows per forward pass: big requests run in chunks of this size


@dataclass
class Served:
    model: nn.Module
    name: str  # what the model is, one line
    source: str  # "run", "VAE", "AnomalyDetector", "SemiSupervisedClassifier" or "model"
    rows: RowSpec  # what a user's row looks like
    to_model: Callable  # parsed user rows (array or DataFrame) -> model-space float tensor (N, *event_shape)
    to_user: Callable  # model-space tensor -> JSON-able {"x": rows[, "columns": names]}
    condition: str = ""  # "", "label" (class names below) or "covariates" (condition_size floats)
    sample_condition: str = ""  # "label": only sampling reads y, optional (M1+M2); "" otherwise
    class_names: list[str] = field(default_factory=list)
    condition_size: int = 0
    log_jacobian: Callable | float = 0.0  # nats to add to a model-space log-density (or f(x_model) -> (N,))
    shift_terms: dict = field(default_factory=dict)  # the same for export: graphs.RowShift(**shift_terms)
    unit: str = "nats per example"
    metrics: dict = field(default_factory=dict)  # the run's numbers for the model card and /info
    preprocessing: dict = field(default_factory=dict)  # JSON: how user rows become model rows
    application: str = ""  # "detector" adds /detect
    app: object = None  # the application's estimator (e.g. the fitted AnomalyDetector)
    examples: Callable | None = None  # () -> (x_model, y or None): data for the explorer's map
    # set by the module that builds an application's Served (e.g. ``detector.from_detector``), so that this
    # module and ``graphs`` never import it back:
    log_px_fn: Callable | None = None  # (served, x_model, *, k, seed) -> log p(x) (N,) nats, user units
    score_graph: Callable | None = None  # (served, x_port, eps_port) -> graphs.Graph named "score"
    extra_graphs: Callable | None = None  # (served, batch) -> [graphs.Graph] after the generic ones (M1+M2's sampler)
    # applications whose requests are not rows of numbers (recommender, molecules) replace the export:
    export_graphs: Callable | None = None  # (served, x_example) -> [graphs.Graph], instead of the generic graphs
    random_rows: Callable | None = None  # (n, seed) -> model-space rows to check the graphs on
    usage: str = ""  # the model card's "Calling it" code block ({path} is the export's directory name)
    details: dict = field(default_factory=dict)  # JSON facts for /info (items, vocabulary, ...)
    state: dict = field(default_factory=dict)  # the application's lookups (not shown)

    @property
    def latent_dim(self) -> int:
        return int(self.model.latent_dim)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return tuple(getattr(self.model, "layer_sizes", (self.latent_dim,)))

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.model.event_shape)

    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- conditions ----------------------------------------------------------------------------
    def condition_tensor(self, y, n: int, *, required: bool = True, sampling: bool = False) -> torch.Tensor | None:
        """The request's ``y`` as the model takes it: label indices (n,) or covariates (n, C).
        ``sampling``: for a ``sample_condition``, y is read and may be left out."""
        kind = self.condition or (self.sample_condition if sampling else "")
        if not kind:
            if y is not None:
                raise BadInput("This model reads y only when sampling (/sample); leave y out here."
                               if self.sample_condition else "This model is not conditional; leave y out.")
            return None
        if y is None:
            if not required or not self.condition:
                return None
            what = f"a label, one of {self.class_names[:10]}," if kind == "label" \
                else f"{self.condition_size} covariates"
            raise BadInput(f"This model is conditional; send y ({what} per row).")
        if kind == "label":
            return torch.from_numpy(labels(self.class_names, y, n))
        return torch.from_numpy(covariates(self.condition_size, y, n))

    @torch.inference_mode()
    def class_probs(self, x: torch.Tensor) -> torch.Tensor | None:
        """q(y|x), (N, n_classes), for models with a classifier (M2, M1+M2), else None."""
        if not hasattr(self.model, "classify"):
            return None
        return torch.cat([self.model.classify(xb).probs.float() for xb in x.split(CHUNK)])

    def classify(self, x: torch.Tensor) -> torch.Tensor | None:
        """Most probable label per row under q(y|x) for models with a classifier, else None."""
        probs = self.class_probs(x)
        return None if probs is None else probs.argmax(-1)

    # -- model computations (model space in, model space out) ----------------------------------
    @torch.inference_mode()
    def encode(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior loc and scale (N, latent_dim); deterministic."""
        locs, scales = [], []
        if self.rows.missing:  # NaN marks a missing cell: the encoder sees 0, the training mean
            x = torch.nan_to_num(x, nan=0.0)
        for i in range(0, len(x), CHUNK):
            q = self.model.encode(x[i : i + CHUNK], None if y is None else y[i : i + CHUNK])
            base = getattr(q, "base_dist", q)
            locs.append(base.loc.float())
            scales.append(base.scale.float())
        return torch.cat(locs), torch.cat(scales)

    @torch.inference_mode()
    def decode(self, z: torch.Tensor, y: torch.Tensor | None, *, mean: bool = True) -> torch.Tensor:
        """E[x|z] (``mean``) or x ~ p(x|z), model space."""
        out = []
        for i in range(0, len(z), CHUNK):
            px = self.model.decode(z[i : i + CHUNK].float(), None if y is None else y[i : i + CHUNK])
            lik = self.model.likelihood
            out.append((lik.mean(px) if mean else lik.sample(px)).float())
        return torch.cat(out)

    @torch.inference_mode()
    def sample_latent(self, n: int, y: torch.Tensor | None, seed: int) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if hasattr(self.model, "sample_latent"):
                return self.model.sample_latent(n, y).float()
            return self.model.prior().sample((n,)).float()

    def shift(self, x: torch.Tensor) -> np.ndarray:
        f = self.log_jacobian
        return np.asarray(f(x), np.float64) if callable(f) else np.full(len(x), float(f))

    def log_px(self, x: torch.Tensor, y: torch.Tensor | None, *, k: int, seed: int) -> np.ndarray:
        """Importance-weighted log p(x) (or log p(x|y) given y) per row in nats, user units. A model with
        a classifier and no y: log p(x) = logsumexp_y [log p(x|y) + log p(y)], p(y) the model's class prior."""
        from vaekit.evaluate import class_marginal_log_likelihood, log_likelihood

        if self.log_px_fn is not None:  # an application's own density (a detector's nll score, negated)
            return self.log_px_fn(self, x, k=k, seed=seed)
        if self.condition == "label" and y is None:
            if not hasattr(self.model, "classify"):
                raise BadInput(f"This model is conditional; send y (a label, one of {self.class_names[:10]}, per row).")
            ll = class_marginal_log_likelihood(self.model, x, k=k, seed=seed)
        else:
            ll = log_likelihood(self.model, x, y, k=k, seed=seed)
        return ll.double().numpy() + self.shift(x)

    def info(self) -> dict:
        """What a client needs to call the service: shapes, names, labels, units and the run's numbers."""
        return {"name": self.name, "source": self.source, "application": self.application or None,
                "latent_dim": self.latent_dim, "layer_sizes": list(self.layer_sizes),
                "event_shape": list(self.event_shape), "rows": self.rows.to_dict(),
                "condition": self.condition or None, "sample_condition": self.sample_condition or None,
                "class_names": self.class_names,
                "condition_size": self.condition_size,
                "likelihood": type(self.model.likelihood).__name__, "prior": type(self.model.prior).__name__,
                "unit": self.unit, "metrics": finite(self.metrics), **finite(self.details)}
