"""Mult-VAE and Mult-DAE (Liang et al. 2018): a click history -> q(z|x) -> a multinomial over items.

    encoder: x / ||x||_2 -> input dropout -> MLP -> q(z|x) = N(loc, diag(scale^2))   (Mult-VAE)
                                                  -> z = loc, a point                   (Mult-DAE)
    decoder: z -> MLP -> logits over items -> p(x|z) = Multinomial(n_u, softmax(logits))

``px.log_prob(x)`` is the multinomial log-probability of the click vector in nats, the multinomial
coefficient log(n_u! / prod_i x_ui!) included (``vaekit.likelihoods.MultinomialLikelihood``).
The family ``"multvae"`` is registered with ``vaekit.config`` through ``build_family``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from vaekit.config import ModelConfig, register_family
from vaekit.likelihoods import MultinomialLikelihood, positive
from vaekit.models import Layer, Output
from vaekit.nets import MLP
from vaekit.priors import StandardNormal

POINT_SCALE = 1e-4  # Mult-DAE's "posterior" is N(loc, POINT_SCALE^2): a point at loc for all purposes


@dataclass
class RecModelConfig:
    """Everything that rebuilds a Mult-VAE/DAE; serialised to JSON with the weights."""

    n_items: int
    latent_dim: int = 200
    hidden: tuple[int, ...] = (600,)  # encoder widths; the decoder mirrors them (paper: [I-600-200-600-I])
    dropout: float = 0.5  # input dropout on the normalised history
    activation: str = "tanh"
    stochastic: bool = True  # False: Mult-DAE (deterministic encoder, no KL term)
    encoder: str = "mlp"  # "mlp" (paper) or "dense" (RecVAE's encoder: dense connections, LayerNorm, SiLU)
    decoder_hidden: tuple[int, ...] | None = None  # decoder widths; None mirrors the encoder, () is linear


class DenseBody(nn.Module):
    """RecVAE's encoder body (Shenbin et al. 2020, sec. 3.3, their code): dense residual connections,
    h_l = LayerNorm(SiLU(W_l h_{l-1} + sum_{j<l} h_j)) with h_0 = x, so later layers reuse earlier
    features."""

    def __init__(self, in_features: int, width: int, depth: int = 5, *, eps: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(in_features if i == 0 else width, width) for i in range(depth))
        self.norms = nn.ModuleList(nn.LayerNorm(width, eps=eps) for _ in range(depth))
        self.out_features = width

    def forward(self, x):
        h, total = None, 0
        for i, (lin, norm) in enumerate(zip(self.layers, self.norms)):
            h = norm(F.silu(lin(x if i == 0 else h) + total))
            total = total + h
        return h


class HistoryEncoder(nn.Module):
    """q(z|x) from a click (or count) history. The network sees x / ||x||_2 with input dropout
    (active in training only); the head gives loc and, when ``stochastic``, a softplus scale."""

    def __init__(self, cfg: RecModelConfig):
        super().__init__()
        self.stochastic = cfg.stochastic
        self.latent_dim = cfg.latent_dim
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.encoder == "dense":
            self.net = DenseBody(cfg.n_items, cfg.hidden[0], depth=len(cfg.hidden))
        elif cfg.encoder == "mlp":
            self.net = MLP(cfg.n_items, cfg.hidden[:-1], cfg.hidden[-1], act=cfg.activation, final_activation=True)
        else:
            raise ValueError(f"Unknown encoder {cfg.encoder!r}; choose 'mlp' or 'dense'.")
        self.head = nn.Linear(cfg.hidden[-1], (2 if cfg.stochastic else 1) * cfg.latent_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, *, dropout: bool = True) -> Distribution:
        h = F.normalize(x.float(), dim=-1)
        h = self.net(self.dropout(h) if dropout else h)  # (B, H)
        if not self.stochastic:
            loc = self.head(h).float()  # (B, L)
            return Independent(Normal(loc, torch.full_like(loc, POINT_SCALE), validate_args=False), 1)
        loc, raw = self.head(h).float().chunk(2, -1)  # (B, L) each
        return Independent(Normal(loc, positive(raw, 1e-4), validate_args=False), 1)


class MultVAE(nn.Module):
    """Mult-VAE (``stochastic=True``) or Mult-DAE (``False``): see the module docstring."""

    def __init__(self, cfg: RecModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = HistoryEncoder(cfg)
        widths = tuple(reversed(cfg.hidden)) if cfg.decoder_hidden is None else tuple(cfg.decoder_hidden)
        self.decoder = MLP(cfg.latent_dim, widths, cfg.n_items, act=cfg.activation)
        self.likelihood = MultinomialLikelihood(total_count=1)
        self.prior = StandardNormal(cfg.latent_dim)
        self.latent_dim = cfg.latent_dim
        self.layer_sizes = (cfg.latent_dim,)
        self.event_shape = (cfg.n_items,)

    def sample_latent(self, n: int, y=None) -> torch.Tensor:
        return self.prior().sample((n,))

    def encode(self, x: torch.Tensor, y=None) -> Distribution:
        return self.encoder(x)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-probabilities over items, (..., I): the ranking scores."""
        lead = z.shape[:-1]
        return self.decoder(z.reshape(-1, z.shape[-1])).float().reshape(*lead, -1)

    def last_hidden(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's last hidden layer h (B, H), so that logits = output layer(h)."""
        for layer in list(self.decoder)[:-1]:
            z = layer(z)
        return z

    def decode(self, z: torch.Tensor, y=None) -> Distribution:
        return self.likelihood(self.logits(z).unsqueeze(-2), 1)  # (..., 1 param, I)

    def forward(self, x: torch.Tensor, y=None, *, k: int | None = None, dropout: bool = True):
        """``dropout=False`` skips the input dropout even in training (RecVAE's decoder steps)."""
        qz = self.encoder(x, dropout=dropout)
        if self.cfg.stochastic:
            z = qz.rsample() if k is None else qz.rsample((k,))
        else:
            z = qz.mean if k is None else qz.mean.expand(k, *qz.mean.shape)
        return Output(self.decode(z), (Layer(qz, z, self.prior()),))

    @torch.inference_mode()
    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Ranking scores for histories ``x`` (B, I): decoder logits at z = E_q[z|x] (no dropout)."""
        return self.logits(self.encode(x).mean)


FAMILY = "multvae"
OPTIONS = ("dropout", "stochastic", "encoder", "decoder_hidden")


def model_config(cfg: RecModelConfig) -> ModelConfig:
    """The shared ``ModelConfig`` that ``vaekit.io`` saves and ``build_model`` rebuilds from."""
    return ModelConfig(family=FAMILY, input_shape=(cfg.n_items,), latent_dim=cfg.latent_dim, hidden=tuple(cfg.hidden),
                       activation=cfg.activation, likelihood="multinomial",
                       options={name: jsonable(getattr(cfg, name)) for name in OPTIONS})


def jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def build_family(cfg: ModelConfig) -> MultVAE:
    """The ``"multvae"`` family's builder: ``input_shape=(n_items,)``, ``latent_dim``, ``hidden``,
    ``activation`` and ``options`` (``dropout``, ``stochastic``, ``encoder``)."""
    unknown = set(cfg.options) - set(OPTIONS)
    if unknown:
        raise ValueError(f"Unknown option(s) {sorted(unknown)} for the {FAMILY} family; valid: {', '.join(OPTIONS)}.")
    options = dict(cfg.options)
    if options.get("decoder_hidden") is not None:
        options["decoder_hidden"] = tuple(options["decoder_hidden"])
    return MultVAE(RecModelConfig(n_items=int(cfg.input_shape[0]), latent_dim=cfg.latent_dim,
                                  hidden=tuple(cfg.hidden), activation=cfg.activation, **options))


register_family(FAMILY, build_family)

