"""The sequence VAE family: a GRU encoder over token rows, a Gaussian posterior, a GRU decoder
conditioned on z and the autoregressive categorical likelihood (``vaekit.sequence``).

Registered with the builder as family ``"sequence"`` (``build_family(cfg: ModelConfig)``), reading
``cfg.input_shape = (longest row,)``, ``cfg.latent_dim``, ``cfg.hidden = (encoder width, decoder
width)``, ``cfg.n_categories`` (vocabulary size) and ``cfg.options`` (``SequenceOptions`` fields).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import Distribution

from vaekit.config import ModelConfig, register_family
from vaekit.models import GaussianEncoder, Layer, Output
from vaekit.nets_recurrent import GRUDecoder, GRUEncoder
from vaekit.priors import StandardNormal
from vaekit.sequence import AutoregressiveCategorical, SequenceLikelihood, SpecialTokens

FAMILY = "sequence"


@dataclass
class SequenceOptions:
    """Options of the sequence family that ModelConfig has no field for (``cfg.options``)."""

    embed_dim: int = 64
    decoder_layers: int = 1
    word_dropout: float = 0.0  # fraction of teacher-forced decoder inputs replaced by <unk> in training
    max_len: int | None = None  # None: sequences of any length; else the end token is certain after it


class SequenceVAE(nn.Module):
    """x (token rows) -> q(z|x) -> z -> p(x|z) autoregressive, prior N(0, I).

    In training mode the likelihood applies ``word_dropout`` to the decoder's inputs (like
    ``nn.Dropout``, it is off in eval mode, so evaluation scores the exact log p(x|z))."""

    def __init__(self, encoder: GaussianEncoder, decoder: GRUDecoder, likelihood: SequenceLikelihood,
                 prior: nn.Module, *, max_len: int, word_dropout: float = 0.0):
        super().__init__()
        self.encoder, self.decoder, self.likelihood, self.prior = encoder, decoder, likelihood, prior
        self.event_shape = (int(max_len),)  # the longest training row: memory bounds only, no length cap
        self.latent_dim = encoder.latent_dim
        self.layer_sizes = (self.latent_dim,)
        self.word_dropout = float(word_dropout)

    def encode(self, x: torch.Tensor, y=None) -> Distribution:
        return self.encoder(x)

    def decode(self, z: torch.Tensor, y=None) -> AutoregressiveCategorical:
        return self.likelihood(self.decoder, z, word_dropout=self.word_dropout if self.training else 0.0)

    def sample_latent(self, n: int, y=None) -> torch.Tensor:
        """z ~ p(z), (n, L), on the model's device."""
        return self.prior().sample((int(n),))

    def forward(self, x: torch.Tensor, y=None, *, k: int | None = None):
        """z of shape (B, L), or (k, B, L) with ``k``; ``px.log_prob(x)`` is then (B,) or (k, B)."""
        qz = self.encode(x)
        z = qz.rsample() if k is None else qz.rsample((k,))
        return Output(self.decode(z), (Layer(qz, z, self.prior()),))


def sequence_options(cfg: ModelConfig) -> SequenceOptions:
    values = dict(getattr(cfg, "options", None) or {})
    names = {f.name for f in dataclasses.fields(SequenceOptions)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"Unknown sequence-model options {unknown}; valid options: {sorted(names)}.")
    return SequenceOptions(**values)


def build_sequence_vae(cfg: ModelConfig, options: SequenceOptions | None = None) -> SequenceVAE:
    """Networks + likelihood + prior as ``cfg`` (and ``options``) describe; same config, same model."""
    opts = options or sequence_options(cfg)
    if len(cfg.hidden) != 2:
        raise ValueError(f"The sequence family needs hidden=(encoder width, decoder width), got {cfg.hidden}.")
    V, L = int(cfg.n_categories), int(cfg.latent_dim)
    specials = SpecialTokens()
    if specials.unknown + 1 >= V:
        raise ValueError(f"The vocabulary has {V} symbols; it needs the 4 special ones and at least one token.")
    body = GRUEncoder(V, embed_dim=opts.embed_dim, hidden=cfg.hidden[0], pad=specials.pad)
    encoder = GaussianEncoder(body, L)
    decoder = GRUDecoder(V, L, embed_dim=opts.embed_dim, hidden=cfg.hidden[1], layers=opts.decoder_layers,
                         pad=specials.pad)
    likelihood = SequenceLikelihood(vocab_size=V, specials=specials, max_len=opts.max_len)
    return SequenceVAE(encoder, decoder, likelihood, StandardNormal(L), max_len=int(cfg.input_shape[0]),
                       word_dropout=opts.word_dropout)


def build_family(cfg: ModelConfig) -> SequenceVAE:
    """The builder registered as family ``"sequence"``."""
    return build_sequence_vae(cfg)


register_family(FAMILY, build_family)  # vaekit.config.FAMILY_MODULES imports this module by name
