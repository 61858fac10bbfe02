"""Observation models p(x|z): decoder output -> a torch Distribution over one example.

A likelihood is a module with ``n_params`` (decoder outputs per data value). Called as
``likelihood(h, event_dims)`` on decoder output ``h`` of shape ``(*batch, n_params, *event_shape)``
(``event_dims == len(event_shape)``), it returns ``px`` with ``px.batch_shape == batch`` and
``px.event_shape == event_shape``, so ``px.log_prob(x)`` is the log-density of a whole example in
nats, normalising constants included. Parameters are computed in float32 whatever precision the
networks ran in. The registry below is the one place a likelihood's name maps to its class.
"""

from __future__ import annotations

import torch
from torch.distributions import Distribution, Independent

from vaekit.likelihoods.base import (
    MAX_LOG_RATE,
    MIN_SCALE,
    BernoulliLikelihood,
    CategoricalLikelihood,
    GaussianLikelihood,
    LaplaceLikelihood,
    Likelihood,
    MultinomialLikelihood,
    NegativeBinomialLikelihood,
    PoissonLikelihood,
    independent,
    positive,
)
from vaekit.likelihoods.table import TableDistribution, TableLikelihood
from vaekit.sequence import SequenceLikelihood

LIKELIHOODS: dict[str, type[Likelihood]] = {
    cls.name: cls
    for cls in (
        BernoulliLikelihood,
        GaussianLikelihood,
        LaplaceLikelihood,
        CategoricalLikelihood,
        PoissonLikelihood,
        NegativeBinomialLikelihood,
        MultinomialLikelihood,
        TableLikelihood,
        SequenceLikelihood,  # autoregressive token sequences: built by the "sequence" family with its decoder
    )
}


def register_likelihood(cls: type[Likelihood]) -> type[Likelihood]:
    """Add a likelihood class to the registry under ``cls.name`` (usable as a decorator)."""
    LIKELIHOODS[cls.name] = cls
    return cls


def make_likelihood(name: str, *, event_shape: tuple[int, ...], **options) -> Likelihood:
    """Build a likelihood by name; ``options`` are its keyword arguments."""
    if name not in LIKELIHOODS:
        raise ValueError(f"Unknown likelihood {name!r}; choose one of {sorted(LIKELIHOODS)}.")
    if name in ("gaussian", "table"):
        options = {"event_shape": event_shape, **options}
    return LIKELIHOODS[name](**options)


def feature_log_prob(px: Distribution, x: torch.Tensor) -> torch.Tensor:
    """log p(x_f|z) per feature, (*batch, F), summing to ``px.log_prob(x)``: a table's columns, else the
    flattened event dimensions of a factorised likelihood."""
    if hasattr(px, "feature_log_prob"):
        return px.feature_log_prob(x)
    if isinstance(px, Independent):
        lp = px.base_dist.log_prob(x)
        return lp.reshape(*lp.shape[: lp.ndim - px.reinterpreted_batch_ndims], -1)
    raise ValueError(f"{type(px).__name__} does not factorise over features; per-feature terms are unavailable.")


__all__ = [
    "LIKELIHOODS", "MAX_LOG_RATE", "MIN_SCALE", "BernoulliLikelihood", "CategoricalLikelihood",
    "GaussianLikelihood", "LaplaceLikelihood", "Likelihood", "MultinomialLikelihood",
    "NegativeBinomialLikelihood", "PoissonLikelihood", "TableDistribution", "TableLikelihood",
    "feature_log_prob", "independent", "make_likelihood", "positive", "register_likelihood",
]
