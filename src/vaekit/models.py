"""Models: a composition of networks, a likelihood and a prior. ``forward`` computes no loss.

Every model's ``forward(x, y=None, *, k=None)`` returns an ``Output``: the observation distribution
``px`` and the stochastic layers, top to bottom, each a ``Layer(q, z, p)``. A one-layer VAE has one
layer, and ``out.qz``, ``out.z``, ``out.pz`` name it, so the ELBO still reads
``px.log_prob(x) - kl(qz, pz)``. Objectives (``vaekit.objectives``) sum over the layers.

Every model also has ``latent_dim`` (the size of its latent vector: all layers, top first),
``layer_sizes``, ``event_shape``, ``likelihood``, ``prior`` (a module returning p(z_top)),
``encode(x, y=None)`` (the posterior over the latent vector; its mean is deterministic),
``decode(z, y=None)`` (p(x|z) from a latent vector) and ``sample_latent(n, y=None)`` (z ~ p(z)).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from vaekit.likelihoods import Likelihood, positive
from vaekit.priors import VampPrior


class Layer(NamedTuple):
    q: Distribution  # q(z_l | x, z_above), batch (B,) or (k, B), event (L_l,)
    z: torch.Tensor  # (B, L_l) or (k, B, L_l): reparameterised samples of q
    p: Distribution  # p(z_l | z_above), the layer's prior


class Output(NamedTuple):
    px: Distribution  # p(x|z), batch like z's leading dims, event = one example
    layers: tuple[Layer, ...]  # stochastic layers, top to bottom

    @property
    def qz(self) -> Distribution:
        return self.layers[0].q

    @property
    def z(self) -> torch.Tensor:
        return self.layers[0].z

    @property
    def pz(self) -> Distribution:
        return self.layers[0].p


def diagonal_normal(loc: torch.Tensor, scale: torch.Tensor) -> Distribution:
    return Independent(Normal(loc, scale, validate_args=False), 1)


class GaussianEncoder(nn.Module):
    """q(z|x[, c]) = N(loc, diag(scale^2)): a feature network, then a linear head for loc and scale.

    The scale is softplus(raw) + 1e-4, so it is positive and finite for any input. A condition ``c``
    (one-hot label or covariates) joins the features before the head. ``input_scale`` multiplies x
    before the network (e.g. 1/255 for integer pixel levels scored by a categorical likelihood);
    ``fill_missing`` shows the network 0 (the training mean of standardised data) where x is NaN, for
    likelihoods that mask missing values out of log p(x|z).
    """

    def __init__(self, net: nn.Module, latent_dim: int, *, cond_dim: int = 0, input_scale: float = 1.0,
                 fill_missing: bool = False):
        super().__init__()
        self.net = net
        self.latent_dim = latent_dim
        self.input_scale = input_scale
        self.fill_missing = fill_missing
        self.head = nn.Linear(net.out_features + cond_dim, 2 * latent_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> Distribution:
        if self.fill_missing:
            x = torch.nan_to_num(x, nan=0.0)
        h = self.net(x * self.input_scale if self.input_scale != 1.0 else x)
        if c is not None:
            h = torch.cat([h, c.to(h.dtype)], -1)
        loc, raw = self.head(h).float().chunk(2, -1)  # (B, L) each, float32 whatever the autocast
        return diagonal_normal(loc, positive(raw, 1e-4))


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
        self.layer_sizes = (self.latent_dim,)

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

    def sample_latent(self, n: int, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.prior().sample((n,))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, *, k: int | None = None) -> Output:
        """One pass; ``k`` draws k samples of z per example, giving z of shape (k, B, L)."""
        qz = self.encode(x, c)
        z = qz.rsample() if k is None else qz.rsample((k,))
        return Output(self.decode(z, c), (Layer(qz, z, self.prior()),))


class ConditionalVAE(nn.Module):
    """A VAE whose encoder and decoder also see a condition y: a class label (integer, one-hot encoded
    to ``n_classes``) or any covariate vector (float, ``n_classes=0``). The prior is unconditional."""

    def __init__(self, vae: VAE, *, n_classes: int = 0):
        super().__init__()
        self.vae = vae
        self.n_classes = int(n_classes)
        self.event_shape, self.latent_dim, self.layer_sizes = vae.event_shape, vae.latent_dim, vae.layer_sizes

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

    def sample_latent(self, n: int, y=None) -> torch.Tensor:
        return self.vae.sample_latent(n)

    def forward(self, x, y, *, k=None) -> Output:
        return self.vae(x, self.condition(y), k=k)


class SemiSupervisedVAE(ConditionalVAE):
    """M2 (Kingma et al. 2014): a label-conditioned VAE p(x|y,z) q(z|x,y) plus a classifier q(y|x);
    ``log_class_prior`` is log p(y) (uniform unless ``class_prior`` gives the class probabilities).

    ``forward(x, y)`` is the conditional VAE's (integer labels); M2's objective
    (``vaekit.apps.semisupervised``) sums over y for unlabelled rows.

    ``side_dim`` > 0: each input row ends with that many values only the classifier reads (e.g. the
    encoded table row beside M1's code, for a "wide" q(y|x)); ``data_part`` strips them for the VAE.
    """

    def __init__(self, vae: VAE, classifier: nn.Module, *, n_classes: int, class_prior=None,
                 learn_class_prior: bool = False, side_dim: int = 0):
        super().__init__(vae, n_classes=n_classes)
        self.classifier, self.side_dim = classifier, int(side_dim)
        p = torch.full((self.n_classes,), 1.0 / self.n_classes) if class_prior is None \
            else torch.as_tensor(class_prior, dtype=torch.float32)
        if p.shape != (self.n_classes,) or not bool((p > 0).all()) or abs(float(p.sum()) - 1.0) > 1e-4:
            raise ValueError(f"class_prior must be {self.n_classes} positive probabilities summing to 1, got "
                             f"{p.tolist()}.")
        if learn_class_prior:  # p(y) = softmax(logits), trained with the model (its maximum-likelihood value)
            self.class_logits = nn.Parameter((p / p.sum()).log())
        else:  # fixed: rebuilt from the model config, not stored in the weights
            self.register_buffer("fixed_log_class_prior", (p / p.sum()).log(), persistent=False)

    @property
    def log_class_prior(self) -> torch.Tensor:
        """log p(y), (K,): the generative model's class prior."""
        logits = getattr(self, "class_logits", None)
        return torch.log_softmax(logits, 0) if logits is not None else self.fixed_log_class_prior

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """y ~ p(y), (n,) on the CPU."""
        return torch.multinomial(self.log_class_prior.exp().cpu(), n, replacement=True, generator=generator)

    def data_part(self, x: torch.Tensor) -> torch.Tensor:
        """The values the VAE models: x without its last ``side_dim`` (classifier-only) values, if it has them."""
        width = self.event_shape[-1]
        return x[..., :width] if self.side_dim and x.shape[-1] == width + self.side_dim else x

    def forward(self, x, y, *, k=None) -> Output:
        return super().forward(self.data_part(x), y, k=k)

    def classify(self, x: torch.Tensor) -> torch.distributions.Categorical:
        """q(y|x), batch (B,); reads the side values too."""
        return torch.distributions.Categorical(logits=self.classifier(x).float())


class WideClassifier(nn.Module):
    """q(y|x) = softmax(W [code, row] + b) for M1+M2 on a table: a softmax regression on M1's code z1 and
    on the encoded row itself (missing cells at 0), so q(y|x) keeps what a logistic regression on the
    columns sees when M1's code lost it. ``penalty()`` = ``l2`` ||W_row||^2 is added to the loss (the
    code's weights are not penalised); the row's weights start at 0."""

    def __init__(self, code_dim: int, side_dim: int, n_classes: int, l2: float):
        super().__init__()
        self.code_dim, self.l2 = int(code_dim), float(l2)
        self.linear = nn.Linear(self.code_dim + int(side_dim), n_classes)
        with torch.no_grad():  # the row's weights start at 0: a softmax regression on the code, widened as the labels ask
            self.linear.weight[:, self.code_dim:] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.nan_to_num(x, nan=0.0))

    def penalty(self) -> torch.Tensor:
        return self.l2 * self.linear.weight[:, self.code_dim:].pow(2).sum()


def init_from_data(model: nn.Module, x: torch.Tensor) -> None:
    """Before training, start the parts that have a natural data-based starting point there: a
    VampPrior's pseudo-inputs at K random rows of ``x`` (when there are K), a learned Gaussian scale at
    each feature's standard deviation. ``x`` is training data in the model's input space."""
    prior, likelihood = getattr(model, "prior", None), getattr(model, "likelihood", None)
    if isinstance(prior, VampPrior) and len(x) >= prior.pseudo_inputs.shape[0]:
        prior.init_from_data(x)
    if hasattr(likelihood, "init_from_data"):
        likelihood.init_from_data(x)
