"""Two-stochastic-layer VAE, z2 -> z1 -> x (Burda et al. 2015, section 5; Tomczak & Welling 2018,
section 3.3), composed from core pieces and built by ``vaekit.config.build_model`` (family
"hierarchical").

Generative model: p(x, z1, z2) = p(x | z1, z2) p(z1 | z2) p(z2).
Inference model: q(z1, z2 | x) = q(z2 | x) q(z1 | x, z2)  (the VampPrior paper's HVAE, eq. 16-17).

``forward`` returns the shared record ``Output(px, (Layer(q(z2|x), z2, p(z2)), Layer(q(z1|x,z2), z1,
p(z1|z2))))``, so the core objectives and evaluation work on it unchanged. The latent vector is
[z2, z1] (top first): ``encode`` gives its posterior with z1 taken at z2 = E_q[z2|x], ``decode``
splits it, ``sample_latent`` draws it ancestrally.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

from vaekit.likelihoods import Likelihood
from vaekit.models import GaussianEncoder, Layer, Output, diagonal_normal


def gaussian_layer(head: GaussianEncoder, h: torch.Tensor) -> Distribution:
    """Apply a Gaussian head to features with any leading dims (B,) or (k, B)."""
    lead = h.shape[:-1]
    base = head(h.reshape(-1, h.shape[-1])).base_dist
    return diagonal_normal(base.loc.reshape(*lead, -1), base.scale.reshape(*lead, -1))


class HierarchicalVAE(nn.Module):
    """x -> q(z2|x), q(z1|x, z2);  p(z2) -> p(z1|z2) -> p(x|z1, z2).

    ``encoder2`` maps x to q(z2|x) (a ``GaussianEncoder``, also used by a VampPrior); ``features1``
    maps x to features that, joined with z2, feed ``encoder1`` (q(z1|x, z2)); ``prior1`` maps z2 to
    p(z1|z2); ``decoder`` maps [z1, z2] to the likelihood's parameters; ``prior`` is p(z2).
    """

    def __init__(self, *, encoder2: GaussianEncoder, features1: nn.Module, encoder1: GaussianEncoder,
                 prior1: GaussianEncoder, decoder: nn.Module, likelihood: Likelihood, prior: nn.Module,
                 event_shape: tuple[int, ...]):
        super().__init__()
        self.encoder2, self.features1, self.encoder1 = encoder2, features1, encoder1
        self.prior1, self.decoder, self.likelihood, self.prior = prior1, decoder, likelihood, prior
        self.event_shape = tuple(event_shape)
        self.z1_dim, self.z2_dim = encoder1.latent_dim, encoder2.latent_dim
        self.layer_sizes = (self.z2_dim, self.z1_dim)
        self.latent_dim = self.z1_dim + self.z2_dim

    def encode_z1(self, x: torch.Tensor, z2: torch.Tensor, h1: torch.Tensor | None = None) -> Distribution:
        """q(z1|x, z2) for z2 of shape (B, L2) or (k, B, L2); ``h1`` reuses features1(x)."""
        h1 = self.features1(x) if h1 is None else h1  # (B, H)
        h = torch.cat([h1.expand(*z2.shape[:-1], h1.shape[-1]), z2.to(h1.dtype)], -1)
        return gaussian_layer(self.encoder1, h)

    def prior_z1(self, z2: torch.Tensor) -> Distribution:
        return gaussian_layer(self.prior1, z2)

    def decode_layers(self, z1: torch.Tensor, z2: torch.Tensor) -> Distribution:
        lead = z1.shape[:-1]
        h = self.decoder(torch.cat([z1, z2], -1).reshape(-1, self.latent_dim))
        return self.likelihood(h.reshape(*lead, self.likelihood.n_params, *self.event_shape), len(self.event_shape))

    def encode(self, x: torch.Tensor, y=None) -> Distribution:
        """q over the latent vector [z2, z1]: q(z2|x) and q(z1|x, z2 = E_q[z2|x]), deterministic mean."""
        q2 = self.encoder2(x)
        q1 = self.encode_z1(x, q2.mean)
        return diagonal_normal(torch.cat([q2.base_dist.loc, q1.base_dist.loc], -1),
                               torch.cat([q2.base_dist.scale, q1.base_dist.scale], -1))

    def decode(self, z: torch.Tensor, y=None) -> Distribution:
        """p(x|z1, z2) from the latent vector [z2, z1]."""
        z2, z1 = z.split([self.z2_dim, self.z1_dim], -1)
        return self.decode_layers(z1, z2)

    def sample_latent(self, n: int, y=None) -> torch.Tensor:
        """[z2, z1] with z2 ~ p(z2), z1 ~ p(z1|z2)."""
        z2 = self.prior().sample((n,))
        return torch.cat([z2, self.prior_z1(z2).sample()], -1)

    def forward(self, x: torch.Tensor, y=None, *, k: int | None = None) -> Output:
        """One pass; ``k`` draws k joint samples (z1, z2) per example, shapes (k, B, L)."""
        if y is not None:
            raise ValueError("The hierarchical VAE is unconditional; pass y=None.")
        qz2 = self.encoder2(x)
        z2 = qz2.rsample() if k is None else qz2.rsample((k,))
        qz1 = self.encode_z1(x, z2)
        z1 = qz1.rsample()
        layers = (Layer(qz2, z2, self.prior()), Layer(qz1, z1, self.prior_z1(z2)))
        return Output(self.decode_layers(z1, z2), layers)


__all__ = ["HierarchicalVAE"]
