"""Typed configs (plain dataclasses) and ``build_model``: a config fully rebuilds a model.

``ModelConfig.family`` names the model family. ``build_model`` dispatches on it through ``FAMILIES``
(builders defined here from the shared sub-builders: feature network, decoder network, likelihood,
prior) or, for families that live with their application, through ``FAMILY_MODULES``: the module is
imported by name and registers its builder with ``register_family``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import nn

from vaekit import checks
from vaekit.hierarchical import HierarchicalVAE
from vaekit.likelihoods import Likelihood, make_likelihood
from vaekit.models import VAE, ConditionalVAE, GaussianEncoder, SemiSupervisedVAE, WideClassifier
from vaekit.nets import MLP, ConvDecoder, ConvEncoder
from vaekit.priors import PRIORS, MixtureOfGaussians, StandardNormal, VampPrior


@dataclass
class ModelConfig:
    family: str = "vae"  # "vae" (plain or conditional), "hierarchical", "m2", or an application's family
    input_shape: tuple[int, ...] = (784,)  # one example: (D,) for vectors, (C, H, W) for images
    latent_dim: int = 16  # for "hierarchical": the top layer z2
    latent_dims: tuple[int, ...] = ()  # "hierarchical": (z2, z1) sizes, top first; () = (latent_dim, latent_dim)
    network: str = "mlp"  # "mlp" or "conv"
    hidden: tuple[int, ...] = (512, 256)  # MLP widths (encoder order; the decoder mirrors them); () = linear
    channels: tuple[int, ...] = (32, 64)  # conv encoder channels; the decoder mirrors them
    residual: bool = False  # residual blocks in the conv networks
    activation: str = "relu"
    likelihood: str = "bernoulli"  # bernoulli, gaussian, laplace, categorical, poisson, ..., table
    gaussian_scale: str = "learned"  # "learned" (per feature), "shared", "predicted", or a fixed positive number
    n_categories: int = 256  # categorical likelihood: values per position
    likelihood_options: dict = field(default_factory=dict)  # e.g. the table likelihood's columns
    prior: str = "normal"  # "normal", "mixture" or "vamp"
    prior_components: int = 10  # mixture components or VampPrior pseudo-inputs
    n_classes: int = 0  # > 0: conditional on an integer label in [0, n_classes) (required for "m2")
    n_covariates: int = 0  # > 0: conditional on a float covariate vector of this size
    input_scale: float = 1.0  # the encoder sees x * input_scale (1/255 for 8-bit levels)
    options: dict = field(default_factory=dict)  # family-specific settings of application families


@dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 128
    lr: float = 2e-3  # with the warm-up and cosine decay below: benchmarks/results/train_recipe.md, speed_*.md
    weight_decay: float = 0.0
    objective: str = "elbo"  # "elbo" or "iwae" (k importance samples)
    k: int = 1
    beta: float = 1.0  # KL weight (after warm-up)
    kl_schedule: str = "constant"  # "constant", "linear" or "cyclical"
    warmup_steps: int = 0  # linear warm-up length, or cycle length for "cyclical"
    free_bits: float = 0.0  # nats per latent dimension (Kingma et al. 2016)
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    lr_schedule: str = "cosine"  # "none" or "cosine" (to 0 at the last step)
    lr_warmup: float = 0.02  # fraction of all steps over which the lr rises linearly from 0
    patience: int = 0  # early stopping on validation ELBO; 0 = off
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "mps"
    precision: str = "auto"  # "auto" (measured rule, see vaekit.runtime), "fp32", "bf16", "fp16"
    bf16_min_work: float = 0.0  # precision="auto" on a CPU: bf16 from this matmul work per step (0 = runtime.BF16_MIN_WORK)
    progress: bool = True
    eval_batch_size: int = 1024
    threads: int = 0  # CPU threads during fit: 0 = auto (on <= 2 cores a short probe decides), -1 = all cores
    compile: bool = False  # torch.compile the model for training (opt-in: see benchmarks/results/speed.md)


# The schedule the applications' defaults were chosen with (a constant lr, no warm-up): their estimators
# keep it until their benchmarks choose again (TrainConfig's own default is the warm-up + cosine recipe).
CONSTANT_LR: dict[str, Any] = {"lr_schedule": "none", "lr_warmup": 0.0}

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


GAUSSIAN_SCALES = ("learned", "shared", "predicted")


def check_model_config(cfg: ModelConfig) -> ModelConfig:
    """Every field's type and range, before anything is built; one sentence names a bad value. A single
    integer for ``hidden`` or ``channels`` means one layer; an empty ``hidden`` a linear network."""
    from vaekit.likelihoods import LIKELIHOODS

    c = checks
    known = sorted({*FAMILIES, *FAMILY_MODULES})
    c.choice("model.family", cfg.family, known)
    shape = cfg.input_shape if isinstance(cfg.input_shape, (list, tuple)) else (cfg.input_shape,)
    input_shape = tuple(c.integer(f"model.input_shape[{i}]", v, low=1) for i, v in enumerate(shape))
    latent_dims = tuple(c.integer(f"model.latent_dims[{i}]", v, low=1) for i, v in enumerate(cfg.latent_dims))
    c.choice("model.network", cfg.network, ("mlp", "conv"))
    c.choice("model.activation", cfg.activation, ("relu", "gelu", "tanh", "silu", "elu"))
    if cfg.likelihood != "auto":
        c.choice("model.likelihood", cfg.likelihood, sorted(LIKELIHOODS))
    if cfg.gaussian_scale not in GAUSSIAN_SCALES:
        c.real("model.gaussian_scale", cfg.gaussian_scale, low=0, low_open=True,
               hint="Use 'learned', 'shared', 'predicted' or a positive number.")
    c.choice("model.prior", cfg.prior, ("normal", "mixture", "vamp"))
    return dataclasses.replace(
        cfg, input_shape=input_shape, latent_dim=c.integer("model.latent_dim", cfg.latent_dim, low=1),
        latent_dims=latent_dims, hidden=c.widths("model.hidden", cfg.hidden),
        channels=c.widths("model.channels", cfg.channels),
        n_categories=c.integer("model.n_categories", cfg.n_categories, low=2),
        prior_components=c.integer("model.prior_components", cfg.prior_components, low=1),
        n_classes=c.integer("model.n_classes", cfg.n_classes, low=0),
        n_covariates=c.integer("model.n_covariates", cfg.n_covariates, low=0),
        input_scale=c.real("model.input_scale", cfg.input_scale, low=0, low_open=True),
        residual=c.boolean("model.residual", cfg.residual))


def check_train_config(cfg: TrainConfig) -> TrainConfig:
    """Every training setting's type and range, before any work starts."""
    c = checks
    c.choice("train.objective", cfg.objective, ("elbo", "iwae"))
    c.choice("train.kl_schedule", cfg.kl_schedule, ("constant", "linear", "cyclical"))
    c.choice("train.lr_schedule", cfg.lr_schedule, ("none", "cosine"))
    c.choice("train.precision", cfg.precision, ("auto", "fp32", "bf16", "fp16"))
    threads = c.integer("train.threads", cfg.threads, low=-1, hint="Use 0 (the library's choice), -1 (all cores) or N >= 1.")
    return dataclasses.replace(
        cfg, epochs=c.integer("train.epochs", cfg.epochs, low=1, hint="Use a whole number of passes over the data."),
        batch_size=c.integer("train.batch_size", cfg.batch_size, low=1),
        lr=c.real("train.lr", cfg.lr, low=0, low_open=True),
        weight_decay=c.real("train.weight_decay", cfg.weight_decay, low=0),
        k=c.integer("train.k", cfg.k, low=1), beta=c.real("train.beta", cfg.beta, low=0),
        warmup_steps=c.integer("train.warmup_steps", cfg.warmup_steps, low=0),
        free_bits=c.real("train.free_bits", cfg.free_bits, low=0),
        bf16_min_work=c.real("train.bf16_min_work", cfg.bf16_min_work, low=0,
                             hint="Use 0 (the library's threshold) or multiply-accumulates per step, e.g. 7e7."),
        grad_clip=c.real("train.grad_clip", cfg.grad_clip, low=0),
        lr_warmup=c.real("train.lr_warmup", cfg.lr_warmup, low=0, high=1,
                         hint="Use a fraction of the training steps, e.g. 0.05."),
        patience=c.integer("train.patience", cfg.patience, low=0), seed=c.integer("train.seed", cfg.seed, low=0),
        eval_batch_size=c.integer("train.eval_batch_size", cfg.eval_batch_size, low=1), threads=threads,
        progress=c.boolean("train.progress", cfg.progress), compile=c.boolean("train.compile", cfg.compile))


def to_dict(config) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


# -- shared sub-builders --------------------------------------------------------------------------
def make_model_likelihood(cfg: ModelConfig) -> Likelihood:
    scale = cfg.gaussian_scale if cfg.gaussian_scale in GAUSSIAN_SCALES else float(cfg.gaussian_scale)
    options = {"gaussian": {"scale": scale}, "categorical": {"n_classes": cfg.n_categories}}
    options = {**options.get(cfg.likelihood, {}), **cfg.likelihood_options}
    return make_likelihood(cfg.likelihood, event_shape=tuple(cfg.input_shape), **options)


def make_feature_net(cfg: ModelConfig, input_shape: tuple[int, ...] | None = None) -> nn.Module:
    """x -> features of width ``hidden[-1]`` (the input size itself when ``hidden`` is empty)."""
    shape = tuple(cfg.input_shape if input_shape is None else input_shape)
    if cfg.network == "mlp":
        D = math.prod(shape)
        if not cfg.hidden:
            return Flat(D)
        return MLP(D, cfg.hidden[:-1], cfg.hidden[-1], act=cfg.activation, final_activation=True)
    if cfg.network == "conv":
        if len(shape) != 3:
            raise ValueError(f"network='conv' needs input_shape (C, H, W), got {shape}.")
        width = cfg.hidden[-1] if cfg.hidden else 256
        return ConvEncoder(shape, cfg.channels, width, act=cfg.activation, residual=cfg.residual)
    raise ValueError(f"Unknown network {cfg.network!r}; choose 'mlp' or 'conv'.")


class Flat(nn.Flatten):
    """The identity on flattened inputs: a linear encoder's feature network."""

    def __init__(self, width: int):
        super().__init__()
        self.out_features = width


def make_decoder_net(cfg: ModelConfig, in_features: int, n_params: int) -> nn.Module:
    """(N, in_features) -> the likelihood's raw parameters for one example."""
    shape = tuple(cfg.input_shape)
    if cfg.network == "mlp":
        return MLP(in_features, tuple(reversed(cfg.hidden)), n_params * math.prod(shape), act=cfg.activation)
    return ConvDecoder(in_features, (n_params * shape[0], *shape[1:]), cfg.channels,
                       act=cfg.activation, residual=cfg.residual)


def make_prior(cfg: ModelConfig, encoder: GaussianEncoder, latent_dim: int, *, conditional: bool = False) -> nn.Module:
    if cfg.prior == "normal":
        return StandardNormal(latent_dim)
    if cfg.prior == "mixture":
        return MixtureOfGaussians(latent_dim, n_components=cfg.prior_components)
    if cfg.prior == "vamp":
        if conditional:
            raise ValueError("The VampPrior is not available for conditional models; use 'normal' or 'mixture'.")
        return VampPrior(encoder, tuple(cfg.input_shape), n_components=cfg.prior_components)
    raise ValueError(f"Unknown prior {cfg.prior!r}; choose one of {sorted(PRIORS)}.")


def make_encoder(cfg: ModelConfig, likelihood: Likelihood, latent_dim: int, *, cond_dim: int = 0) -> GaussianEncoder:
    return GaussianEncoder(make_feature_net(cfg), latent_dim, cond_dim=cond_dim, input_scale=cfg.input_scale,
                           fill_missing=getattr(likelihood, "masks_missing", False))


# -- families ---------------------------------------------------------------------------------------
def build_vae(cfg: ModelConfig) -> nn.Module:
    """A one-layer VAE, conditional on a label or covariates when ``n_classes``/``n_covariates`` > 0."""
    if cfg.n_classes and cfg.n_covariates:
        raise ValueError("Set n_classes (labels) or n_covariates (covariates), not both.")
    cond = cfg.n_classes or cfg.n_covariates
    likelihood = make_model_likelihood(cfg)
    encoder = make_encoder(cfg, likelihood, cfg.latent_dim, cond_dim=cond)
    decoder = make_decoder_net(cfg, cfg.latent_dim + cond, likelihood.n_params)
    prior = make_prior(cfg, encoder, cfg.latent_dim, conditional=bool(cond))
    vae = VAE(encoder, decoder, likelihood, prior, event_shape=tuple(cfg.input_shape))
    return ConditionalVAE(vae, n_classes=cfg.n_classes) if cond else vae


def build_m2(cfg: ModelConfig) -> nn.Module:
    """M2: the label-conditioned VAE plus a classifier q(y|x) with the encoder's feature network, or
    (``options["classifier"] = "linear"``) a softmax regression on the input, or ("wide") one on the input
    and ``options["side_dim"]`` further values only the classifier reads, with ``options["l2"]`` on their
    weights (``WideClassifier``)."""
    if cfg.n_classes < 2:
        raise ValueError(f"A semi-supervised (m2) model needs at least 2 classes, got n_classes={cfg.n_classes}.")
    if cfg.n_covariates:
        raise ValueError("The m2 family is conditional on its class label only; set n_covariates=0.")
    if cfg.prior == "vamp":
        raise ValueError("The VampPrior is not available for conditional models; use 'normal' or 'mixture'.")
    vae = build_vae(cfg).vae
    classifier = cfg.options.get("classifier", "mlp")
    if classifier not in ("mlp", "linear", "wide"):
        raise ValueError(f"Unknown classifier {classifier!r}; use 'mlp' (the encoder's feature network), 'linear' "
                         "or 'wide'.")
    side = int(cfg.options.get("side_dim", 0))
    if classifier == "wide":  # a softmax regression on [the modelled input, side_dim classifier-only values]
        if side < 1 or len(cfg.input_shape) != 1:
            raise ValueError("classifier 'wide' needs flat inputs and options['side_dim'] >= 1 (the values only "
                             "the classifier reads, after the modelled ones).")
        wide = WideClassifier(cfg.input_shape[0], side, cfg.n_classes, float(cfg.options.get("l2", 0.0)))
        return SemiSupervisedVAE(vae, wide, n_classes=cfg.n_classes, class_prior=cfg.options.get("class_prior"),
                                 learn_class_prior=bool(cfg.options.get("learn_class_prior", False)), side_dim=side)
    if side:
        raise ValueError("options['side_dim'] is for classifier 'wide' only.")
    # "linear": q(y|x) is a softmax regression on the (flattened) input, e.g. M1's code in M1+M2
    body = make_feature_net(dataclasses.replace(cfg, network="mlp", hidden=()) if classifier == "linear" else cfg)
    layers = [body, nn.Linear(body.out_features, cfg.n_classes)]
    if cfg.input_scale != 1.0:
        layers.insert(0, Scale(cfg.input_scale))
    if getattr(vae.likelihood, "masks_missing", False):  # a table: NaN (a missing cell) shows as 0, as in the encoder
        layers.insert(0, FillMissing())
    return SemiSupervisedVAE(vae, nn.Sequential(*layers), n_classes=cfg.n_classes,
                             class_prior=cfg.options.get("class_prior"),  # p(y) (its start if learned); absent: uniform
                             learn_class_prior=bool(cfg.options.get("learn_class_prior", False)))


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


class FillMissing(nn.Module):
    """NaN (a missing cell of a standardised table row) -> 0, the training mean."""

    def forward(self, x):
        return torch.nan_to_num(x, nan=0.0)


def build_hierarchical(cfg: ModelConfig) -> nn.Module:
    """Two stochastic layers (z2 top, z1 bottom), every network from the shared sub-builders; the
    prior (normal, mixture or VampPrior) is on z2 and p(z1|z2) is learned."""
    if cfg.n_classes or cfg.n_covariates:
        raise ValueError("The hierarchical family is unconditional; set n_classes and n_covariates to 0.")
    dims = tuple(cfg.latent_dims) or (cfg.latent_dim, cfg.latent_dim)
    if len(dims) != 2:
        raise ValueError(f"latent_dims for the hierarchical family is (z2, z1), top layer first; got {list(dims)}.")
    z2, z1 = dims
    likelihood = make_model_likelihood(cfg)
    encoder2 = make_encoder(cfg, likelihood, z2)
    features1 = make_feature_net(cfg)
    H = features1.out_features
    small = dataclasses.replace(cfg, network="mlp")  # p(z1|z2): an MLP with the same widths
    head1 = MLP(H + z2, (), H, act=cfg.activation, final_activation=True)
    return HierarchicalVAE(
        encoder2=encoder2, features1=features1, encoder1=GaussianEncoder(head1, z1),
        prior1=GaussianEncoder(make_feature_net(small, (z2,)), z1),
        decoder=make_decoder_net(cfg, z1 + z2, likelihood.n_params), likelihood=likelihood,
        prior=make_prior(cfg, encoder2, z2), event_shape=tuple(cfg.input_shape))


Builder = Callable[[ModelConfig], nn.Module]
FAMILIES: dict[str, Builder] = {"vae": build_vae, "m2": build_m2, "hierarchical": build_hierarchical}
# Families that live with their application: imported by name on first use, then registered.
FAMILY_MODULES: dict[str, str] = {"multvae": "vaekit.apps.recommend.model", "sequence": "vaekit.apps.molecules.model"}


def register_family(name: str, builder: Builder) -> None:
    FAMILIES[name] = builder


def build_model(cfg: ModelConfig) -> nn.Module:
    """Networks + likelihood + prior(s), as ``cfg`` describes. The same config always gives the same
    architecture, so saved weights load into it."""
    cfg = check_model_config(cfg)
    if cfg.family not in FAMILIES and cfg.family in FAMILY_MODULES:
        importlib.import_module(FAMILY_MODULES[cfg.family])
    if cfg.family not in FAMILIES:
        known = sorted({*FAMILIES, *FAMILY_MODULES})
        raise ValueError(f"Unknown model family {cfg.family!r}; choose one of {', '.join(known)}.")
    return FAMILIES[cfg.family](cfg)


__all__ = ["FAMILIES", "ModelConfig", "TrainConfig", "build_model", "from_dict", "make_decoder_net",
           "make_encoder", "make_feature_net", "make_model_likelihood", "make_prior", "register_family",
           "to_dict"]
