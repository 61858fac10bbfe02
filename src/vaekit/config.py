"""Typed configs (plain dataclasses) and ``build_model``: a config fully rebuilds a model."""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from vaekit.likelihoods import make_likelihood
from vaekit.models import VAE, ConditionalVAE, GaussianEncoder
from vaekit.nets import MLP, ConvDecoder, ConvEncoder
from vaekit.priors import PRIORS, MixtureOfGaussians, StandardNormal, VampPrior


@dataclass
class ModelConfig:
    input_shape: tuple[int, ...] = (784,)  # one example: (D,) for vectors, (C, H, W) for images
    latent_dim: int = 16
    network: str = "mlp"  # "mlp" or "conv"
    hidden: tuple[int, ...] = (512, 256)  # MLP encoder widths; the decoder mirrors them
    channels: tuple[int, ...] = (32, 64)  # conv encoder channels; the decoder mirrors them
    residual: bool = False  # residual blocks in the conv networks
    activation: str = "relu"
    likelihood: str = "bernoulli"  # bernoulli, gaussian, laplace, categorical, poisson, ...
    gaussian_scale: str = "learned"  # "learned", "predicted", or a fixed positive number
    n_categories: int = 256  # categorical likelihood: values per position
    prior: str = "normal"  # "normal", "mixture" or "vamp"
    prior_components: int = 10  # mixture components or VampPrior pseudo-inputs
    n_classes: int = 0  # > 0: conditional on an integer label in [0, n_classes)
    n_covariates: int = 0  # > 0: conditional on a float covariate vector of this size
    input_scale: float = 1.0  # the encoder sees x * input_scale (1/255 for 8-bit levels)


@dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    objective: str = "elbo"  # "elbo" or "iwae" (k importance samples)
    k: int = 1
    beta: float = 1.0  # KL weight (after warm-up)
    kl_schedule: str = "constant"  # "constant", "linear" or "cyclical"
    warmup_steps: int = 0  # linear warm-up length, or cycle length for "cyclical"
    free_bits: float = 0.0  # nats per latent dimension (Kingma et al. 2016)
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    lr_schedule: str = "none"  # "none" or "cosine"
    patience: int = 0  # early stopping on validation ELBO; 0 = off
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "mps"
    precision: str = "auto"  # "auto" (bf16 autocast where the hardware has it, else fp32), "fp32", "bf16", "fp16"
    progress: bool = True
    eval_batch_size: int = 1024
    threads: int = 0  # CPU threads during fit: 0 = auto (1 on <= 2 cores), -1 = leave torch's setting
    compile: bool = False  # torch.compile the model for training (opt-in: see benchmarks/results/speed.md)


C = TypeVar("C")


def from_dict(cls: type[C], values: dict[str, Any], *, where: str = "") -> C:
    """Build a config dataclass; an unknown key is an error naming the nearest valid key."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            near = difflib.get_close_matches(key, names, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else f" Valid keys: {', '.join(names)}."
            raise ValueError(f"Unknown config key '{where}{key}'.{hint}")
    kwargs = {}
    for key, value in values.items():
        default = names[key].default
        if isinstance(default, tuple) and isinstance(value, (list, tuple)):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def to_dict(config) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def build_model(cfg: ModelConfig) -> nn.Module:
    """Networks + likelihood + prior, as ``cfg`` describes. The same config always gives the same
    architecture, so saved weights load into it."""
    shape, L = tuple(cfg.input_shape), cfg.latent_dim
    cond = cfg.n_classes or cfg.n_covariates
    if cfg.n_classes and cfg.n_covariates:
        raise ValueError("Set n_classes (labels) or n_covariates (covariates), not both.")
    scale = cfg.gaussian_scale if cfg.gaussian_scale in ("learned", "predicted") else float(cfg.gaussian_scale)
    options = {"gaussian": {"scale": scale}, "categorical": {"n_classes": cfg.n_categories}}
    likelihood = make_likelihood(cfg.likelihood, event_shape=shape, **options.get(cfg.likelihood, {}))
    P = likelihood.n_params
    if cfg.network == "mlp":
        D = math.prod(shape)
        body = MLP(D, cfg.hidden[:-1], cfg.hidden[-1], act=cfg.activation, final_activation=True)
        decoder = MLP(L + cond, tuple(reversed(cfg.hidden)), P * D, act=cfg.activation)
    elif cfg.network == "conv":
        if len(shape) != 3:
            raise ValueError(f"network='conv' needs input_shape (C, H, W), got {shape}.")
        body = ConvEncoder(shape, cfg.channels, cfg.hidden[-1], act=cfg.activation, residual=cfg.residual)
        decoder = ConvDecoder(L + cond, (P * shape[0], *shape[1:]), cfg.channels,
                              act=cfg.activation, residual=cfg.residual)
    else:
        raise ValueError(f"Unknown network {cfg.network!r}; choose 'mlp' or 'conv'.")
    encoder = GaussianEncoder(body, L, cond_dim=cond, input_scale=cfg.input_scale)
    if cfg.prior == "normal":
        prior = StandardNormal(L)
    elif cfg.prior == "mixture":
        prior = MixtureOfGaussians(L, n_components=cfg.prior_components)
    elif cfg.prior == "vamp":
        if cond:
            raise ValueError("The VampPrior is not available for conditional models; use 'normal' or 'mixture'.")
        prior = VampPrior(encoder, shape, n_components=cfg.prior_components)
    else:
        raise ValueError(f"Unknown prior {cfg.prior!r}; choose one of {sorted(PRIORS)}.")
    vae = VAE(encoder, decoder, likelihood, prior, event_shape=shape)
    return ConditionalVAE(vae, n_classes=cfg.n_classes) if cond else vae


__all__ = ["ModelConfig", "TrainConfig", "build_model", "from_dict", "to_dict"]
