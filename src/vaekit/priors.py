"""Priors p(z). The model's prior is the one place p(z) is defined: ``pz = model.prior()``."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from vaekit.likelihoods import positive


class DiagonalGaussianMixture(MixtureSameFamily):
    """sum_k w_k N(z; m_k, diag(s_k^2)) as torch's ``MixtureSameFamily``, with a ``log_prob`` that never
    forms the (..., K, D) tensor of per-dimension terms.

    The squared Mahalanobis distances come from three matrix products,
    sum_d (z_d - m_kd)^2 / s_kd^2 = z^2 . (1/s_k^2) - 2 z . (m_k/s_k^2) + sum_d m_kd^2/s_kd^2,
    taken in float64 so the cancellation between the terms costs nothing measurable (the result is
    returned in the input's dtype). With K = 500 components and 50 dimensions this is the difference
    between a VampPrior that costs ten times a plain VAE per step and one that costs about twice.
    Anything other than one mixture over diagonal Gaussians in the last dimension takes torch's path.
    """

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        comp, logits = self.component_distribution, self.mixture_distribution.logits
        base = comp.base_dist if isinstance(comp, Independent) else None
        if (not isinstance(base, Normal) or comp.reinterpreted_batch_ndims != 1 or base.loc.dim() != 2
                or logits.dim() != 1 or x.shape[-1] != base.loc.shape[-1]):
            return super().log_prob(x)
        if self._validate_args:
            self._validate_sample(x)
        dims = base.loc.shape[-1]
        loc, scale = base.loc.double(), base.scale.double()
        precision = scale.pow(-2)  # (K, D)
        flat = x.reshape(-1, dims).double()  # (N, D)
        sq = flat.pow(2) @ precision.T - 2.0 * flat @ (loc * precision).T + (loc.pow(2) * precision).sum(-1)
        log_comp = -0.5 * sq - scale.log().sum(-1) - 0.5 * dims * math.log(2 * math.pi)  # (N, K)
        out = torch.logsumexp(log_comp + torch.log_softmax(logits.double(), -1), -1)
        return out.reshape(x.shape[:-1]).to(x.dtype if x.is_floating_point() else torch.get_default_dtype())


class StandardNormal(nn.Module):
    """p(z) = N(0, I)."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("loc", torch.zeros(latent_dim))

    def forward(self) -> Distribution:
        return Independent(Normal(self.loc, torch.ones_like(self.loc)), 1)


class MixtureOfGaussians(nn.Module):
    """Learnable mixture of K diagonal Gaussians with learnable weights."""

    def __init__(self, latent_dim: int, *, n_components: int = 10, seed: int = 0):
        super().__init__()
        self.latent_dim = latent_dim
        g = torch.Generator().manual_seed(seed)
        self.loc = nn.Parameter(torch.randn(n_components, latent_dim, generator=g))
        self.raw_scale = nn.Parameter(torch.full((n_components, latent_dim), math.log(math.e - 1)))
        self.logits = nn.Parameter(torch.zeros(n_components))

    def forward(self) -> Distribution:
        components = Independent(Normal(self.loc, positive(self.raw_scale)), 1)
        return DiagonalGaussianMixture(Categorical(logits=self.logits), components)


class VampPrior(nn.Module):
    """p(z) = (1/K) sum_k q(z | u_k) with K learned pseudo-inputs u_k (Tomczak & Welling 2018, eq. 9).

    ``encoder`` is the model's own encoder (shared, not copied), so the prior follows it in training.
    """

    def __init__(self, encoder: nn.Module, input_shape: tuple[int, ...], *, n_components: int = 500,
                 init: torch.Tensor | None = None, seed: int = 0):
        super().__init__()
        self.encoder = [encoder]  # a plain list: the encoder is registered by the model, not here
        g = torch.Generator().manual_seed(seed)
        u = 0.5 + 0.05 * torch.randn(n_components, *input_shape, generator=g) if init is None else init
        self.pseudo_inputs = nn.Parameter(u.clone().float())
        self.latent_dim = encoder.latent_dim

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, seed: int = 0) -> None:
        """Start the pseudo-inputs at K distinct random rows of ``x`` (in the model's input space).

        Grey-noise pseudo-inputs all encode to nearly the same q(z|u), so the prior starts as one narrow
        Gaussian and training can collapse the posterior onto it; data rows spread the components out.
        """
        k = self.pseudo_inputs.shape[0]
        if len(x) < k:
            raise ValueError(f"init_from_data needs at least {k} rows (one per pseudo-input), got {len(x)}; "
                             "pass more data or build the prior with fewer components.")
        if tuple(x.shape[1:]) != tuple(self.pseudo_inputs.shape[1:]):
            raise ValueError(f"init_from_data got rows of shape {tuple(x.shape[1:])}, but the pseudo-inputs have "
                             f"shape {tuple(self.pseudo_inputs.shape[1:])}; pass data in the model's input shape.")
        rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:k]
        self.pseudo_inputs.copy_(x[rows].to(self.pseudo_inputs))

    def forward(self) -> Distribution:
        qu = self.encoder[0](self.pseudo_inputs)  # Independent(Normal) with batch (K,)
        weights = torch.zeros(qu.batch_shape, device=self.pseudo_inputs.device)
        return DiagonalGaussianMixture(Categorical(logits=weights), qu)


PRIORS = {"normal": StandardNormal, "mixture": MixtureOfGaussians, "vamp": VampPrior}

