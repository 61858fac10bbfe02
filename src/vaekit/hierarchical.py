"""Two-stochastic-layer VAE, z2 -> z1 -> x (Burda et al. 2015, section 5; Tomczak & Welling 2018,
section 3.3), composed from core pieces: ``MLP`` networks, ``GaussianEncoder`` heads, a likelihood
and a prior on the top layer (N(0, I), a mixture, or a VampPrior over q(z2|u)).

Generative model: p(x, z1, z2) = p(x | z1, z2) p(z1 | z2) p(z2).
Inference model: q(z1, z2 | x) = q(z2 | x) q(z1 | x, z2)  (the VampPrior paper's HVAE, eq. 16-17).

``forward`` returns a record of distributions and samples and computes no loss; ``elbo`` and
``iwae_bound`` are pure functions returning ``Terms`` and plug into ``vaekit.fit(objective=...)`` and
``vaekit.dataset_elbo(objective=...)``; ``log_likelihood`` is the chunked importance-weighted estimate
of log p(x) for this model. Every number is in nats per example.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from vaekit.evaluate import SAMPLES_PER_CHUNK, batches, model_device
from vaekit.evaluate import log_likelihood as importance_weighted
from vaekit.likelihoods import Likelihood, make_likelihood
from vaekit.models import GaussianEncoder
from vaekit.nets import MLP
from vaekit.objectives import Terms, kl_terms
from vaekit.priors import MixtureOfGaussians, StandardNormal, VampPrior


class HierarchicalOutput(NamedTuple):
    qz2: Distribution  # q(z2|x), batch (B,), event (L2,)
    z2: torch.Tensor  # (B, L2) or (k, B, L2)
    qz1: Distribution  # q(z1|x, z2), batch like z2's leading dims, event (L1,)
    z1: torch.Tensor  # (B, L1) or (k, B, L1)
    pz1: Distribution  # p(z1|z2), batch like qz1
    px: Distribution  # p(x|z1, z2), batch like z1's leading dims, event = one example
    pz2: Distribution  # p(z2), event (L2,)


def gaussian_layer(head: GaussianEncoder, h: torch.Tensor) -> Distribution:
    """Apply a Gaussian head to features with any leading dims (B,) or (k, B)."""
    lead = h.shape[:-1]
    q = head(h.reshape(-1, h.shape[-1]))
    base = q.base_dist
    loc, scale = base.loc.reshape(*lead, -1), base.scale.reshape(*lead, -1)
    return Independent(Normal(loc, scale, validate_args=False), 1)


class HierarchicalVAE(nn.Module):
    """x -> q(z2|x), q(z1|x, z2);  p(z2) -> p(z1|z2) -> p(x|z1, z2).

    ``encoder2`` maps x to q(z2|x) (a ``GaussianEncoder``, also used by a VampPrior); ``features1``
    maps x to features that, joined with z2, feed ``encoder1`` (a ``GaussianEncoder`` giving
    q(z1|x, z2)); ``prior1`` maps z2 to p(z1|z2); ``decoder`` maps [z1, z2] to the likelihood's
    parameters; ``prior`` is p(z2).
    """

    def __init__(self, *, encoder2: GaussianEncoder, features1: nn.Module, encoder1: GaussianEncoder,
                 prior1: GaussianEncoder, decoder: nn.Module, likelihood: Likelihood, prior: nn.Module,
                 event_shape: tuple[int, ...]):
        super().__init__()
        self.encoder2, self.features1, self.encoder1 = encoder2, features1, encoder1
        self.prior1, self.decoder, self.likelihood, self.prior = prior1, decoder, likelihood, prior
        self.event_shape = tuple(event_shape)
        self.z1_dim, self.z2_dim = encoder1.latent_dim, encoder2.latent_dim
        self.latent_dim = self.z1_dim + self.z2_dim

    @classmethod
    def mlp(cls, in_features: int, *, z1_dim: int = 40, z2_dim: int = 40, hidden: tuple[int, ...] = (300, 300),
            activation: str = "tanh", likelihood: str = "bernoulli", prior: str = "normal",
            n_components: int = 500, pseudo_init: torch.Tensor | None = None) -> HierarchicalVAE:
        """Every network an MLP with ``hidden`` widths; ``prior`` is 'normal', 'mixture' or 'vamp'."""
        D, H, act = in_features, tuple(hidden), activation
        lik = make_likelihood(likelihood, event_shape=(D,))

        def body(n_in):  # n_in -> hidden -> features of width hidden[-1]
            return MLP(n_in, H[:-1], H[-1], act=act, final_activation=True)

        encoder2 = GaussianEncoder(body(D), z2_dim)
        if prior == "normal":
            pz2 = StandardNormal(z2_dim)
        elif prior == "mixture":
            pz2 = MixtureOfGaussians(z2_dim, n_components=n_components)
        elif prior == "vamp":
            init = None if pseudo_init is None else pseudo_init[:n_components].reshape(-1, D)
            pz2 = VampPrior(encoder2, (D,), n_components=n_components, init=init)
        else:
            raise ValueError(f"Unknown prior {prior!r}; choose 'normal', 'mixture' or 'vamp'.")
        model = cls(encoder2=encoder2, features1=body(D),
                    encoder1=GaussianEncoder(MLP(H[-1] + z2_dim, (), H[-1], act=act, final_activation=True), z1_dim),
                    prior1=GaussianEncoder(body(z2_dim), z1_dim),
                    decoder=MLP(z1_dim + z2_dim, tuple(reversed(H)), lik.n_params * D, act=act),
                    likelihood=lik, prior=pz2, event_shape=(D,))
        # Everything needed to rebuild the architecture (vaekit.hierarchical_io saves it as JSON).
        model.spec = {"in_features": D, "z1_dim": z1_dim, "z2_dim": z2_dim, "hidden": list(H), "activation": act,
                      "likelihood": likelihood, "prior": prior, "n_components": n_components}
        return model

    def encode(self, x: torch.Tensor) -> Distribution:
        """q(z2|x), the top layer (what a VampPrior and ``posterior_means`` see)."""
        return self.encoder2(x)

    def encode_z1(self, x: torch.Tensor, z2: torch.Tensor, h1: torch.Tensor | None = None) -> Distribution:
        """q(z1|x, z2) for z2 of shape (B, L2) or (k, B, L2); ``h1`` reuses features1(x)."""
        h1 = self.features1(x) if h1 is None else h1  # (B, H)
        h = torch.cat([h1.expand(*z2.shape[:-1], h1.shape[-1]), z2.to(h1.dtype)], -1)
        return gaussian_layer(self.encoder1, h)

    def prior_z1(self, z2: torch.Tensor) -> Distribution:
        return gaussian_layer(self.prior1, z2)

    def decode(self, z1: torch.Tensor, z2: torch.Tensor) -> Distribution:
        lead = z1.shape[:-1]
        h = self.decoder(torch.cat([z1, z2], -1).reshape(-1, self.latent_dim))
        return self.likelihood(h.reshape(*lead, self.likelihood.n_params, *self.event_shape), len(self.event_shape))

    def forward(self, x: torch.Tensor, *, k: int | None = None) -> HierarchicalOutput:
        """One pass; ``k`` draws k joint samples (z1, z2) per example, shapes (k, B, L)."""
        qz2 = self.encode(x)
        z2 = qz2.rsample() if k is None else qz2.rsample((k,))
        qz1 = self.encode_z1(x, z2)
        z1 = qz1.rsample()
        return HierarchicalOutput(qz2, z2, qz1, z1, self.prior_z1(z2), self.decode(z1, z2), self.prior())

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """n examples' means E[x|z1, z2] with z2 ~ p(z2), z1 ~ p(z1|z2)."""
        z2 = self.prior().sample((n,))
        z1 = self.prior_z1(z2).sample()
        return self.likelihood.mean(self.decode(z1, z2))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """E[x|z1, z2] at the posterior means of z2 and then z1."""
        z2 = self.encode(x).mean
        z1 = self.encode_z1(x, z2).mean
        return self.likelihood.mean(self.decode(z1, z2))


def elbo(model: HierarchicalVAE, x: torch.Tensor, y=None, *, beta: float = 1.0, free_bits: float = 0.0) -> Terms:
    """ELBO = E_q[log p(x|z1,z2)] - E_q(z2|x)[KL(q(z1|x,z2) || p(z1|z2))] - KL(q(z2|x) || p(z2)),
    one joint sample (Tomczak & Welling 2018, eq. 18). KLs are analytic where torch knows the pair,
    else log q - log p at the sample. ``beta`` weights both KLs in the loss; ``free_bits`` (nats per
    dimension, batch mean) floors each Gaussian layer's KL in the loss. ``elbo`` is the true bound."""
    if y is not None:
        raise ValueError("HierarchicalVAE is unconditional; pass y=None.")
    qz2, z2, qz1, z1, pz1, px, pz2 = model(x)
    log_px_z = px.log_prob(x)  # (B,)
    kl1, kl1_dims = kl_terms(qz1, pz1, z1)
    kl2, kl2_dims = kl_terms(qz2, pz2, z2)
    kl = kl1 + kl2
    kl_loss = 0.0
    for kl_l, dims in ((kl1, kl1_dims), (kl2, kl2_dims)):
        if free_bits > 0 and dims is not None:
            kl_loss = kl_loss + dims.mean(0).clamp(min=free_bits).sum()
        else:
            kl_loss = kl_loss + kl_l.mean()
    loss = -log_px_z.mean() + beta * kl_loss
    return Terms(loss, log_px_z - kl, log_px_z, kl)


def log_weights(model: HierarchicalVAE, x: torch.Tensor, *, k: int):
    """log w_i = log p(x|z1,z2) + log p(z1|z2) + log p(z2) - log q(z1|x,z2) - log q(z2|x),
    (z1, z2)_i ~ q, i = 1..k. Returns (log_w, log_px_z, log q - log p), each (k, B)."""
    qz2, z2, qz1, z1, pz1, px, pz2 = model(x, k=k)
    log_px_z = px.log_prob(x)
    log_q_over_p = qz2.log_prob(z2) + qz1.log_prob(z1) - pz2.log_prob(z2) - pz1.log_prob(z1)
    return log_px_z - log_q_over_p, log_px_z, log_q_over_p


def iwae_bound(model: HierarchicalVAE, x: torch.Tensor, y=None, *, k: int, beta: float = 1.0,
               free_bits: float = 0.0) -> Terms:
    """IWAE_k = log (1/k) sum_i w_i (Burda et al. 2015, eq. 8) over joint samples (z1, z2); a training
    objective too (beta and free bits do not apply)."""
    if y is not None:
        raise ValueError("HierarchicalVAE is unconditional; pass y=None.")
    log_w, log_px_z, kl = log_weights(model, x, k=k)
    bound = torch.logsumexp(log_w.float(), 0) - math.log(k)  # (B,)
    return Terms(-bound.mean(), bound, log_px_z.mean(0), kl.mean(0))


def log_likelihood(model: HierarchicalVAE, x: torch.Tensor, *, k: int = 1000, seed: int = 0,
                   samples_per_chunk: int = SAMPLES_PER_CHUNK) -> torch.Tensor:
    """Importance-weighted log p(x) per example, (N,) nats on the CPU, with k joint samples from
    q(z1, z2|x): ``vaekit.evaluate.log_likelihood`` (chunked, memory-bounded, deterministic for a given
    ``seed``) with this model's log weights."""
    return importance_weighted(model, x, k=k, seed=seed, samples_per_chunk=samples_per_chunk,
                                   weights=lambda m, xb, yb, k: log_weights(m, xb, k=k))


@torch.inference_mode()
def active_units(model: HierarchicalVAE, x: torch.Tensor, *, threshold: float = 0.01,
                 batch_size: int = 1024) -> dict[str, int]:
    """Active units per layer: Cov_x(E_q[z|x]) > threshold (Burda et al. 2015, section 5.2); for z1 the
    posterior mean is taken at z2 = E_q[z2|x]."""
    was_training = model.training
    model.eval()
    means2, means1 = [], []
    for xb, _ in batches(x, batch_size=batch_size, device=model_device(model)):
        m2 = model.encode(xb).mean
        means2.append(m2.cpu())
        means1.append(model.encode_z1(xb, m2).mean.cpu())
    model.train(was_training)
    return {name: int((torch.cat(m).double().var(0) > threshold).sum()) if len(x) > 1 else 0
            for name, m in (("z1", means1), ("z2", means2))}


__all__ = ["HierarchicalOutput", "HierarchicalVAE", "active_units", "elbo", "iwae_bound", "log_likelihood",
           "log_weights"]
