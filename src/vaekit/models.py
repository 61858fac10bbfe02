"""Models: a composition of networks, a likelihood and a prior. ``forward`` computes no loss."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from vaekit.likelihoods import Likelihood, positive
from vaekit.priors import VampPrior


class Output(NamedTuple):
    qz: Distribution  # q(z|x), batch (B,), event (L,)
    z: torch.Tensor  # (B, L) or (k, B, L): reparameterised samples of qz
    px: Distribution  # p(x|z), batch like z's leading dims, event = one example
    pz: Distribution  # p(z), event (L,)


class GaussianEncoder(nn.Module):
    """q(z|x[, c]) = N(loc, diag(scale^2)): a feature network, then a linear head for loc and scale.

    The scale is softplus(raw) + 1e-4, so it is positive and finite for any input. A condition ``c``
    (one-hot label or covariates) joins the features before the head. ``input_scale`` multiplies x
    before the network (e.g. 1/255 for integer pixel levels scored by a categorical likelihood).
    """

    def __init__(self, net: nn.Module, latent_dim: int, *, cond_dim: int = 0, input_scale: float = 1.0):
        super().__init__()
        self.net = net
        self.latent_dim = latent_dim
        self.input_scale = input_scale
        self.head = nn.Linear(net.out_features + cond_dim, 2 * latent_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> Distribution:
        h = self.net(x * self.input_scale if self.input_scale != 1.0 else x)
        if c is not None:
            h = torch.cat([h, c.to(h.dtype)], -1)
        loc, raw = self.head(h).float().chunk(2, -1)  # (B, L) each, float32 whatever the autocast
        return Independent(Normal(loc, positive(raw, 1e-4), validate_args=False), 1)


class VAE(nn.Module):
    """x -> q(z|x) -> z -> p(x|z), with prior p(z).

    ``decoder`` maps (N, latent_dim [+ cond_dim]) to (N, n_params * prod(event_shape)) for flat data
    or (N, n_params * C, H, W) for images; ``likelihood`` turns that into ``px``.
    """

    def __init__(self, encoder: GaussianEncoder, decoder: nn.Module, likelihood: Likelihood,
                 prior: nn.Module, *, event_shape: tuple[int, ...]):
        super().__init__()
        self.encoder, self.decoder, self.likelihood, self.prior = encoder, decoder, likelihood, prior
        self.event_shape = tuple(event_shape)
        self.latent_dim = encoder.latent_dim

    def encode(self, x: torch.Tensor, c: torch.Tensor | None = None) -> Distribution:
        return self.encoder(x, c)

    def decode(self, z: torch.Tensor, c: torch.Tensor | None = None) -> Distribution:
        lead = z.shape[:-1]  # (B,) or (k, B)
        z = z.reshape(-1, z.shape[-1])
        if c is not None:
            c = c.expand(*lead, c.shape[-1]).reshape(-1, c.shape[-1])
            z = torch.cat([z, c.to(z.dtype)], -1)
        h = self.decoder(z).reshape(*lead, self.likelihood.n_params, *self.event_shape)
        return self.likelihood(h, len(self.event_shape))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, *, k: int | None = None) -> Output:
        """One pass; ``k`` draws k samples of z per example, giving z of shape (k, B, L)."""
        qz = self.encode(x, c)
        z = qz.rsample() if k is None else qz.rsample((k,))
        return Output(qz, z, self.decode(z, c), self.prior())


class ConditionalVAE(nn.Module):
    """A VAE whose encoder and decoder also see a condition: a class label (integer, one-hot encoded
    to ``n_classes``) or any covariate vector (float, ``n_classes=0``). The prior is unconditional."""

    def __init__(self, vae: VAE, *, n_classes: int = 0):
        super().__init__()
        self.vae = vae
        self.n_classes = n_classes
        self.event_shape, self.latent_dim = vae.event_shape, vae.latent_dim

    @property
    def prior(self) -> nn.Module:
        return self.vae.prior

    @property
    def likelihood(self) -> Likelihood:
        return self.vae.likelihood

    def condition(self, y: torch.Tensor) -> torch.Tensor:
        if self.n_classes:
            return F.one_hot(y.long(), self.n_classes).float()
        return y.float().reshape(len(y), -1)

    def encode(self, x, y):
        return self.vae.encode(x, self.condition(y))

    def decode(self, z, y):
        return self.vae.decode(z, self.condition(y))

    def forward(self, x, y, *, k=None) -> Output:
        return self.vae(x, self.condition(y), k=k)


def init_from_data(model: nn.Module, x: torch.Tensor) -> None:
    """Before training, start the parts that have a natural data-based starting point there: a
    VampPrior's pseudo-inputs at K random rows of ``x`` (when there are K), a learned Gaussian scale at
    each feature's standard deviation. ``x`` is training data in the model's input space."""
    prior, likelihood = getattr(model, "prior", None), getattr(model, "likelihood", None)
    if isinstance(prior, VampPrior) and len(x) >= prior.pseudo_inputs.shape[0]:
        prior.init_from_data(x)
    if hasattr(likelihood, "init_from_data"):
        likelihood.init_from_data(x)
