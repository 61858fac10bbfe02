"""Semi-supervised VAE, model M2 (Kingma, Rezende, Mohamed & Welling 2014, "Semi-supervised learning
with deep generative models").

Generative model p(y) p(z) p(x|y,z) with p(y) uniform over K classes; inference model q(y|x) q(z|x,y).
A labelled example contributes the bound L(x,y) <= log p(x,y) (eq. 6); an unlabelled one the bound
U(x) = sum_y q(y|x) L(x,y) + H(q(y|x)) <= log p(x) (eq. 7), summing over every class; the classifier
also learns from labels with weight alpha (eq. 9). ``y == -1`` marks an unlabelled row throughout.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical, Distribution

from vaekit.config import ModelConfig
from vaekit.likelihoods import Likelihood, make_likelihood
from vaekit.models import GaussianEncoder, Output
from vaekit.nets import MLP, ConvDecoder, ConvEncoder
from vaekit.objectives import Terms, elbo
from vaekit.priors import StandardNormal

UNLABELLED = -1


class SemiSupervisedVAE(nn.Module):
    """M2: a classifier q(y|x), an encoder q(z|x,y), a decoder p(x|y,z), prior p(z) = N(0, I).

    ``encode``/``decode``/``forward`` take integer labels like ``vaekit.ConditionalVAE``, so the core
    ``elbo`` and ``log_likelihood`` work on labelled data unchanged (they give log p(x|y) bounds).
    """

    def __init__(self, classifier: nn.Module, encoder: GaussianEncoder, decoder: nn.Module,
                 likelihood: Likelihood, prior: nn.Module, *, n_classes: int, event_shape: tuple[int, ...]):
        super().__init__()
        self.classifier, self.encoder, self.decoder = classifier, encoder, decoder
        self.likelihood, self.prior = likelihood, prior
        self.n_classes, self.event_shape = int(n_classes), tuple(event_shape)
        self.latent_dim = encoder.latent_dim

    def condition(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y.long(), self.n_classes).float()

    def classify(self, x: torch.Tensor) -> Categorical:
        """q(y|x), batch (B,)."""
        return Categorical(logits=self.classifier(x).float())

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> Distribution:
        return self.encoder(x, self.condition(y))

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> Distribution:
        lead = z.shape[:-1]  # (B,) or (k, B)
        c = self.condition(y).expand(*lead, self.n_classes)
        h = self.decoder(torch.cat([z, c.to(z.dtype)], -1).reshape(-1, z.shape[-1] + self.n_classes))
        return self.likelihood(h.reshape(*lead, self.likelihood.n_params, *self.event_shape), len(self.event_shape))

    def forward(self, x: torch.Tensor, y: torch.Tensor, *, k: int | None = None) -> Output:
        qz = self.encode(x, y)
        z = qz.rsample() if k is None else qz.rsample((k,))
        return Output(qz, z, self.decode(z, y), self.prior())


def build_m2(cfg: ModelConfig) -> SemiSupervisedVAE:
    """M2 networks as ``cfg`` describes them (``n_classes`` > 0 classes; ``hidden``, ``channels``,
    ``network`` and ``likelihood`` as for the core VAE). The classifier has the encoder's shape."""
    if cfg.n_classes < 2:
        raise ValueError(f"A semi-supervised model needs at least 2 classes, got n_classes={cfg.n_classes}.")
    if cfg.prior != "normal":
        raise ValueError("The semi-supervised VAE uses the standard normal prior; set prior='normal'.")
    shape, L, K = tuple(cfg.input_shape), cfg.latent_dim, cfg.n_classes
    scale = cfg.gaussian_scale if cfg.gaussian_scale in ("learned", "predicted") else float(cfg.gaussian_scale)
    options = {"gaussian": {"scale": scale}, "categorical": {"n_classes": cfg.n_categories}}
    likelihood = make_likelihood(cfg.likelihood, event_shape=shape, **options.get(cfg.likelihood, {}))
    P, D = likelihood.n_params, math.prod(shape)

    def body() -> nn.Module:
        if cfg.network == "mlp":
            return MLP(D, cfg.hidden[:-1], cfg.hidden[-1], act=cfg.activation, final_activation=True)
        if cfg.network == "conv":
            if len(shape) != 3:
                raise ValueError(f"network='conv' needs input_shape (C, H, W), got {shape}.")
            return ConvEncoder(shape, cfg.channels, cfg.hidden[-1], act=cfg.activation, residual=cfg.residual)
        raise ValueError(f"Unknown network {cfg.network!r}; choose 'mlp' or 'conv'.")

    classifier_body = body()
    classifier = nn.Sequential(classifier_body, nn.Linear(classifier_body.out_features, K))
    if cfg.input_scale != 1.0:
        classifier = nn.Sequential(Scale(cfg.input_scale), *classifier)
    encoder = GaussianEncoder(body(), L, cond_dim=K, input_scale=cfg.input_scale)
    if cfg.network == "mlp":
        decoder = MLP(L + K, tuple(reversed(cfg.hidden)), P * D, act=cfg.activation)
    else:
        decoder = ConvDecoder(L + K, (P * shape[0], *shape[1:]), cfg.channels, act=cfg.activation,
                              residual=cfg.residual)
    return SemiSupervisedVAE(classifier, encoder, decoder, likelihood, StandardNormal(L),
                             n_classes=K, event_shape=shape)


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def labelled_bound(model: SemiSupervisedVAE, x: torch.Tensor, y: torch.Tensor, *, beta: float = 1.0):
    """L(x,y) = E_q[log p(x|y,z)] + log p(y) - beta KL(q(z|x,y) || p(z)) (eq. 6), (B,) nats;
    also returns E_q[log p(x|y,z)] and the KL."""
    t = elbo(model, x, y)
    return t.log_px_z - beta * t.kl - math.log(model.n_classes), t.log_px_z, t.kl


def unlabelled_bound(model: SemiSupervisedVAE, x: torch.Tensor, qy: Categorical, *, beta: float = 1.0):
    """U(x) = sum_y q(y|x) L(x,y) + H(q(y|x)) (eq. 7), summing over all K classes, (B,) nats;
    also returns E_q(y|x) of E_q[log p(x|y,z)] and of the KL."""
    B, K = len(x), model.n_classes
    ys = torch.arange(K, device=x.device).repeat_interleave(B)  # (K*B,) class-major
    xs = x.expand(K, *x.shape).reshape(K * B, *x.shape[1:])  # (K*B, ...)
    terms = labelled_bound(model, xs, ys, beta=beta)
    probs = qy.probs.T  # (K, B)
    bound, log_px_z, kl = ((probs * v.reshape(K, B)).sum(0) for v in terms)  # E_q(y|x)[.], (B,) each
    return bound + qy.entropy(), log_px_z, kl


def m2_objective(model: SemiSupervisedVAE, x: torch.Tensor, y: torch.Tensor, *, alpha: float,
                 labelled_fraction: float | None = None, beta: float = 1.0, free_bits: float = 0.0) -> Terms:
    """J^alpha / N (Kingma et al. 2014, eq. 9) on a batch mixing labelled rows and rows with y == -1:

        loss = f E_l[-L(x,y)] + (1 - f) E_u[-U(x)] + alpha f E_l[-log q(y|x)],

    with f the share of labelled examples in the whole training set (``labelled_fraction``; default:
    the share in this batch), so one labelled and one unlabelled batch estimate the full-data objective
    without bias; the paper uses alpha = 0.1 N. ``elbo`` is L(x,y) <= log p(x,y) for labelled rows and
    U(x) <= log p(x) for unlabelled ones (nats, with beta = 1). Free bits do not apply.
    """
    lab = y >= 0
    n_lab, n_unl = int(lab.sum()), int((~lab).sum())
    f = n_lab / len(y) if labelled_fraction is None else labelled_fraction
    qy = model.classify(x)  # (B,)
    log_k = math.log(model.n_classes)
    loss = torch.zeros((), device=x.device)
    bound, log_px_z, kl = (torch.zeros(len(y), device=x.device) for _ in range(3))  # (B,) each
    if n_lab:
        yl = y[lab]
        l_beta, lp, k = labelled_bound(model, x[lab], yl, beta=beta)
        nll_y = -qy.log_prob(y.clamp(min=0))[lab]  # (B_l,) classification loss
        loss = loss + f * (-l_beta.mean() + alpha * nll_y.mean())
        bound[lab], log_px_z[lab], kl[lab] = (lp - k - log_k).float(), lp.float(), k.float()
    if n_unl:
        qu = Categorical(logits=qy.logits[~lab])
        u_beta, lp, k = unlabelled_bound(model, x[~lab], qu, beta=beta)
        loss = loss + (1 - f) * -u_beta.mean()
        bound[~lab] = (lp - k - log_k + qu.entropy()).float()
        log_px_z[~lab], kl[~lab] = lp.float(), k.float()
    return Terms(loss, bound, log_px_z, kl)
