"""Observation models for arrays, images and counts: decoder output -> a torch Distribution over one example.

A likelihood is a module with ``n_params`` (decoder outputs per data value). Called as
``likelihood(h, event_dims)`` on decoder output ``h`` of shape ``(*batch, n_params, *event_shape)``
(``event_dims == len(event_shape)``), it returns ``px`` with
``px.batch_shape == batch`` and ``px.event_shape == event_shape``, so ``px.log_prob(x)`` is the
log-density of a whole example in nats, normalising constants included. Parameters are computed in
float32 whatever precision the networks ran in.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import (
    Bernoulli,
    Categorical,
    Distribution,
    Independent,
    Laplace,
    Multinomial,
    NegativeBinomial,
    Normal,
    Poisson,
)

MIN_SCALE = 1e-3
MAX_LOG_RATE = 20.0


def positive(h: torch.Tensor, floor: float = MIN_SCALE) -> torch.Tensor:
    """Map an unconstrained tensor to (floor, inf) without overflow: softplus + floor."""
    return F.softplus(h) + floor


def independent(base: Distribution, n_event_dims: int) -> Distribution:
    return Independent(base, n_event_dims) if n_event_dims else base


class Likelihood(nn.Module):
    """Base of every observation model; subclasses only define ``n_params`` and ``distribution``."""

    n_params: int = 1
    name: str = ""

    def forward(self, h: torch.Tensor, event_dims: int) -> Distribution:
        params = h.float().unbind(-event_dims - 1)  # n_params tensors of shape (*batch, *event)
        return self.over_event(self.distribution(*params), event_dims)

    def over_event(self, base: Distribution, event_dims: int) -> Distribution:
        """The per-value distribution ``base`` as one over a whole example."""
        return independent(base, event_dims)

    def distribution(self, *params: torch.Tensor) -> Distribution:
        raise NotImplementedError

    def mean(self, px: Distribution) -> torch.Tensor:
        """E[x|z], used for reconstructions and decoded means."""
        return px.mean

    def sample(self, px: Distribution) -> torch.Tensor:
        return px.sample()


class BernoulliLikelihood(Likelihood):
    """Binary data; decoder gives logits."""

    name = "bernoulli"

    def over_event(self, base: Distribution, event_dims: int) -> Distribution:
        return IndependentBernoulli(base, event_dims) if event_dims else base

    def distribution(self, logits):
        return Bernoulli(logits=logits, validate_args=False)


class IndependentBernoulli(Independent):
    """Bernoulli values of one example. Scoring data against several decodings of it (the importance-
    weighted estimator's k samples: logits (k, B, *event), data (B, *event)) takes one product per
    example for sum_d x_d l_d and one softplus pass, sum_d [x_d l_d - softplus(l_d)]: the same log-
    probability as torch's binary cross-entropy with logits (up to float rounding, ~1e-4 nats on 784
    values) in about half the time, since that runs several element-wise passes over the broadcast
    data (a whole k = 1000 evaluation of a 784-512-512-32 model ran 1.2x faster). Any other call,
    training's included, is torch's."""

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        logits, n = self.base_dist.logits, self.reinterpreted_batch_ndims
        if not (n <= value.dim() < logits.dim() and value.shape == logits.shape[logits.dim() - value.dim():]):
            return super().log_prob(value)
        shape = logits.shape[: logits.dim() - n]  # (*samples, *batch of the data)
        x = value.reshape(-1, value.shape[value.dim() - n:].numel()).to(logits.dtype)  # (M, D)
        flat = logits.reshape(-1, *x.shape)  # (S, M, D)
        dot = torch.einsum("smd,md->sm", flat, x)
        return (dot - F.softplus(flat).sum(-1)).reshape(shape)


class GaussianLikelihood(Likelihood):
    """Real data. ``scale`` is ``"learned"`` (one per feature), ``"shared"`` (one learned scale for every
    value, the calibrated decoder of Rybkin et al. 2021's sigma-VAE), ``"predicted"`` (per example, by the
    decoder) or a positive float (fixed). A learned one per feature gives the best density on tables, but
    on images it lets the model buy nats with near-constant pixels, and its features suffer: on grey MNIST
    a linear probe of the 32-d posterior means scored 91.2% with one shared scale on [0, 1] pixels and
    47.9% with per-pixel standardisation and scales (PCA 90.1%; benchmarks/results/features.md). A learned
    or predicted scale is at least ``min_scale`` (data units; 0.02 by default, 2% of the range of data in [0, 1], 2% of a standard deviation of
    standardised data): without a floor, a feature that barely varies in training gets a tiny scale and
    one example where it differs costs thousands of nats, dominating every average (on the built-in
    digits' validation split the worst example cost 3,149 nats with a floor of 0.001, 311 with 0.02;
    the mean validation ELBO rose from 49.4 to 55.2 nats)."""

    name = "gaussian"

    def __init__(self, *, event_shape: tuple[int, ...] = (), scale: str | float = "learned",
                 min_scale: float = 0.02):
        super().__init__()
        self.scale_mode = scale
        self.min_scale = float(min_scale)
        if not self.min_scale > 0:
            raise ValueError(f"min_scale must be positive, got {min_scale!r}.")
        self.n_params = 2 if scale == "predicted" else 1
        if scale in ("learned", "shared"):
            shape = tuple(event_shape) if scale == "learned" else ()
            self.raw_scale = nn.Parameter(torch.full(shape, math.log(math.e - 1)))
        elif scale != "predicted" and not float(scale) > 0:
            raise ValueError(f"Gaussian scale must be 'learned', 'shared', 'predicted' or > 0, got {scale!r}.")

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """A learned scale starts at each feature's standard deviation in ``x`` (just above the floor at
        least), the scale of a model that knows only the marginals, instead of 1: on data in [0, 1] a
        scale of 1 makes the likelihood so flat that the KL term switches most latent units off early."""
        if self.scale_mode in ("learned", "shared") and len(x) > 1:
            x = x.float()
            std = (x.std(0) if self.scale_mode == "learned" else (x - x.mean(0)).pow(2).mean().sqrt())
            std = std.clamp(min=self.min_scale + 0.01).to(self.raw_scale)
            if std.shape == self.raw_scale.shape:
                self.raw_scale.copy_(torch.log(torch.expm1(std - self.min_scale)))

    def distribution(self, loc, raw=None):
        if self.scale_mode == "predicted":
            scale = positive(raw, self.min_scale)
        elif self.scale_mode in ("learned", "shared"):
            scale = positive(self.raw_scale, self.min_scale).expand_as(loc)
        else:
            scale = torch.full_like(loc, float(self.scale_mode))
        return Normal(loc, scale, validate_args=False)


class LaplaceLikelihood(Likelihood):
    """Real data with heavy tails; decoder gives location and (raw) scale."""

    name = "laplace"
    n_params = 2

    def distribution(self, loc, raw):
        return Laplace(loc, positive(raw), validate_args=False)


class CategoricalLikelihood(Likelihood):
    """One of ``n_classes`` values per position (tokens, 8-bit pixels as integers 0..n_classes-1)."""

    name = "categorical"

    def __init__(self, *, n_classes: int = 256):
        super().__init__()
        self.n_classes = int(n_classes)
        self.n_params = self.n_classes

    def forward(self, h: torch.Tensor, event_dims: int) -> Distribution:
        logits = h.float().movedim(-event_dims - 1, -1)  # (*batch, *event, K)
        return independent(Categorical(logits=logits, validate_args=False), event_dims)

    def mean(self, px):
        probs = px.base_dist.probs if isinstance(px, Independent) else px.probs
        levels = torch.arange(self.n_classes, device=probs.device, dtype=probs.dtype)
        return (probs * levels).sum(-1)


class PoissonLikelihood(Likelihood):
    """Counts; decoder gives the log-rate, clamped to [-20, 20] so log p stays finite."""

    name = "poisson"

    def distribution(self, log_rate):
        return Poisson(log_rate.clamp(-MAX_LOG_RATE, MAX_LOG_RATE).exp(), validate_args=False)


class NegativeBinomialLikelihood(Likelihood):
    """Over-dispersed counts; decoder gives raw total_count (dispersion) and logits."""

    name = "negative_binomial"
    n_params = 2

    def distribution(self, raw_total_count, logits):
        return NegativeBinomial(positive(raw_total_count), logits=logits, validate_args=False)


class MultinomialLikelihood(Likelihood):
    """Counts over the last axis (e.g. clicks over items, Mult-VAE); decoder gives logits.

    The number of trials is read from each example, so ``log_prob`` is exact for any total;
    ``total_count`` is used only for sampling and for the mean of decoded prior samples.
    """

    name = "multinomial"

    def __init__(self, *, total_count: int = 1):
        super().__init__()
        self.total_count = int(total_count)

    def forward(self, h: torch.Tensor, event_dims: int) -> Distribution:
        logits = h.float().squeeze(-event_dims - 1)  # (*batch, *event); the last axis is the event
        dist = Multinomial(self.total_count, logits=logits, validate_args=False)
        return independent(dist, event_dims - 1)
