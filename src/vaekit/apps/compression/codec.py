"""Lossless compression with a trained VAE: bits-back coding with ANS (BB-ANS, Townsend et al. 2019).

For each example x, in order, on one ANS stack (``constriction``):

1. pop z from the quantised posterior Q(z|x)      (gets back -log Q(z|x) bits: the "bits back"),
2. push x with the likelihood p(x|z)               (costs -log p(x|z)),
3. push z with the quantised prior P(z)             (costs -log P(z)).

The net cost per example is -log p(x|z) - log P(z) + log Q(z|x), whose mean over Q is the negative
ELBO of the discretised model (Townsend et al. 2019, eq. 3). Decompression runs the steps backwards
in reverse order. The latents are quantised to bins of width 2**-bin_bits on [-z_max, z_max]; the
bin width cancels between prior and posterior, so fine bins cost nothing but the one-off initial bits.
The stack starts with seeded random words (the "initial bits", BB-ANS sec. 2.5) that the first
example borrows; decompression checks it gets exactly these words back.

Determinism: the networks run in float64, one example at a time on both sides (identical shapes,
identical order), and their outputs are snapped to a 2**-16 grid before the core's likelihood and
encoder heads, so compressor and decompressor see bit-identical probabilities. A hash of the original
data is checked after decoding: a mismatch is an error, never silently wrong data.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import constriction
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from vaekit.apps.compression.format import (
    FORMAT_VERSION,
    Header,
    data_hash,
    model_hash,
    pack,
    read_header,
    unpack,
)
from vaekit.likelihoods import BernoulliLikelihood, CategoricalLikelihood
from vaekit.loading import as_model
from vaekit.models import VAE
from vaekit.objectives import normal_base
from vaekit.runtime import heavy

DEFAULT_BIN_BITS = 10  # latent bins 2**-10 wide: finer bins raise the prior's 2**-24 floor mass
DEFAULT_Z_MAX = 8  # latent range [-8, 8] (prior standard deviations)
SNAP = 2.0**-16  # grid for network outputs: identical floats on both sides
PRECISION_BITS = 24  # constriction's default ANS coder: probabilities are multiples of 2**-24
INIT_SEED = 0x5EED
POSTERIOR_SDS = 8  # posterior window half-width in standard deviations


class Snap(nn.Module):
    """Round to a fixed grid, so tiny float differences cannot reach the entropy coder."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.round(h / SNAP) * SNAP


@dataclass
class Codec:
    """The three entropy models of BB-ANS for one trained VAE, in float64 and bin units."""

    model: nn.Module  # a float64 copy with snapped outputs
    kind: str  # "bernoulli" or "categorical"
    bin_bits: int
    z_max: int

    @property
    def scale(self) -> float:
        return float(2**self.bin_bits)  # bins per unit of z

    @property
    def prior_family(self):
        bound = self.z_max * 2**self.bin_bits
        return constriction.stream.model.QuantizedGaussian(-bound, bound)

    def prior(self) -> tuple[np.ndarray, np.ndarray]:
        p = normal_base(self.model.prior())
        return self.bins(p.loc.reshape(-1)), self.bins(p.scale.reshape(-1))

    def posterior(self, x: np.ndarray) -> list:
        """Q(z_d|x) for each latent d, on its own window mean +- 8 sd (clipped to the prior's range).

        A window, not the whole range: the coder gives every symbol in range at least 2**-24, and
        over the full range that floor mass (~0.1% per latent at 2**-10 bins) would now and then
        pop a z far in the tail, costing the likelihood dearly."""
        xb = torch.from_numpy(x.astype(np.float64)).reshape(1, *self.model.event_shape)
        q = normal_base(self.model.encode(xb))
        mu, sd = self.bins(q.loc[0]), self.bins(q.scale[0])
        bound = self.z_max * 2**self.bin_bits
        half = np.ceil(POSTERIOR_SDS * sd) + 1
        lo = np.clip(np.floor(mu) - half, -bound, bound - 1)
        hi = np.clip(np.ceil(mu) + half, lo + 1, bound)
        gaussian = constriction.stream.model.QuantizedGaussian
        return [gaussian(int(a), int(b), float(m), float(s)) for a, b, m, s in zip(lo, hi, mu, sd)]

    def bins(self, t: torch.Tensor) -> np.ndarray:
        """A latent quantity in units of bins, snapped to a 2**-8 bin grid."""
        v = t.double().numpy() * self.scale
        return np.round(v * 256.0) / 256.0

    def likelihood(self, z: np.ndarray):
        """p(x|z) at the bin centres z, as (constriction model family, per-value parameters)."""
        zt = torch.from_numpy(z.astype(np.float64) / self.scale).reshape(1, -1)  # exact: a power of 2
        px = self.model.decode(zt)
        logits = px.base_dist.logits.double()
        if self.kind == "bernoulli":
            p = torch.sigmoid(logits.reshape(-1))  # (D,) probability of a 1
            return constriction.stream.model.Bernoulli(perfect=False), (p.numpy(),)
        probs = torch.softmax(logits.reshape(-1, logits.shape[-1]), -1)  # (D, K)
        return constriction.stream.model.Categorical(perfect=False), (probs.numpy(),)


def make_codec(model: nn.Module, bin_bits: int, z_max: int) -> Codec:
    if not isinstance(model, VAE):
        raise ValueError("compress needs an unconditional one-layer VAE (vaekit.VAE, or a run trained with "
                         f"family 'vae' and no labels); got {type(model).__name__}.")
    if isinstance(model.likelihood, BernoulliLikelihood):
        kind = "bernoulli"
    elif isinstance(model.likelihood, CategoricalLikelihood):
        kind = "categorical"
    else:
        raise ValueError(  # a user error (e.g. a run directory's config): ValueError for the CLI
            f"compress supports models with a 'bernoulli' or 'categorical' likelihood, not "
            f"{model.likelihood.name!r}; lossless coding needs a discrete likelihood.")
    if normal_base(model.prior()) is None:
        raise ValueError("compress supports the 'normal' prior only (a factorised Gaussian p(z)); "
                         "train the model with prior='normal'.")
    if not (1 <= bin_bits <= 20 and 1 <= z_max <= 64):
        raise ValueError(f"bin_bits must be in [1, 20] and z_max in [1, 64], got {bin_bits} and {z_max}.")
    m = copy.deepcopy(model).cpu().double().eval()
    m.encoder.head = nn.Sequential(m.encoder.head, Snap())
    m.decoder = nn.Sequential(m.decoder, Snap())
    return Codec(m, kind, bin_bits, z_max)


def as_array(X) -> tuple[np.ndarray, str]:
    if isinstance(X, torch.Tensor):
        return X.detach().cpu().numpy(), "torch"
    if isinstance(X, np.ndarray):
        return X, "numpy"
    try:
        return np.asarray(X), "numpy"
    except (TypeError, ValueError) as e:
        raise ValueError(f"X must be an array of examples, got {type(X).__name__} ({e}).") from None


def check_data(x: np.ndarray, codec: Codec) -> np.ndarray:
    """Validate X for the model's likelihood; return it as (N, D) int32 symbols."""
    event = tuple(codec.model.event_shape)
    D = math.prod(event)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"X must hold numbers (bool, integer or float), got dtype {x.dtype}.")
    if x.ndim < 1 or math.prod(x.shape[1:]) != D or (x.ndim == 1 and D != 1):
        raise ValueError(f"X must have shape (n_examples, *{event}) or (n_examples, {D}) for this model, "
                         f"got {x.shape}.")
    flat = x.reshape(len(x), D)
    high = 2 if codec.kind == "bernoulli" else codec.model.likelihood.n_classes
    if x.dtype.kind == "f" and not np.isfinite(flat).all():
        raise ValueError("X contains NaN or infinite values; lossless compression needs finite values.")
    if x.dtype.kind == "f" and not np.array_equal(flat, np.round(flat)):
        raise ValueError("X contains non-integer values; this model codes integer levels "
                         f"0..{high - 1} (e.g. 8-bit pixels as 0..255, not scaled to [0, 1]).")
    if flat.size and (flat.min() < 0 or flat.max() >= high):
        raise ValueError(f"X has values outside 0..{high - 1}, the range of this model's "
                         f"{codec.kind} likelihood (found {flat.min()}..{flat.max()}).")
    return flat.astype(np.int32)


def initial_words(latent_dim: int) -> np.ndarray:
    """Enough seeded random words for the first pop: at most 24 bits per latent (min probability)."""
    n = math.ceil(PRECISION_BITS * latent_dim / 32) + 1
    return np.random.default_rng(INIT_SEED).integers(1, 2**32, n, dtype=np.uint32)


@heavy
@torch.inference_mode()
def compress(model: nn.Module, X, *, bin_bits: int = DEFAULT_BIN_BITS, z_max: int = DEFAULT_Z_MAX,
             progress: bool = False) -> bytes:
    """Losslessly compress ``X`` (N examples of binary data or integer levels) with a trained VAE
    (a fitted ``vaekit.VAE``, its torch model, or a saved model directory).

    Returns the bytes of a ``.vkz`` file (see ``compression_format``); ``decompress(model, data)``
    with the same model gives back ``X`` exactly (same values, dtype, shape and array type). The
    expected size is the model's negative ELBO on ``X`` plus a small fixed overhead (header and
    initial bits, see ``read_header``).
    """
    model = as_model(model)
    x, container = as_array(X)
    codec = make_codec(model, bin_bits, z_max)
    symbols = check_data(x, codec)
    init = initial_words(codec.model.latent_dim)
    coder = constriction.stream.stack.AnsCoder(init, seal=True)
    prior, (mu_p, sd_p) = codec.prior_family, codec.prior()
    for xi in tqdm(symbols, disable=not progress, unit="example", desc="compress"):
        z = np.array([coder.decode(q) for q in codec.posterior(xi)], dtype=np.int32)  # bits back: z ~ Q(z|x)
        family, params = codec.likelihood(z)
        coder.encode_reverse(xi, family, *params)  # push x ~ p(x|z)
        coder.encode_reverse(z, prior, mu_p, sd_p)  # push z ~ P(z)
    payload = coder.get_compressed()
    header = Header(FORMAT_VERSION, model_hash(model), data_hash(x), container, bin_bits, z_max,
                    len(init), x.dtype.str, tuple(int(s) for s in x.shape), len(payload), 0)
    return pack(header, payload)


@heavy
@torch.inference_mode()
def decompress(model: nn.Module, data: bytes, *, progress: bool = False):
    """Invert ``compress``: the original array (numpy or torch, as given), bit-exact.

    Raises ``ValueError`` for data that is not a ``.vkz`` file, is truncated or corrupted, or was made
    with a different model.
    """
    model = as_model(model)
    header, payload = unpack(data)
    if header.model_hash != model_hash(model):
        raise ValueError("This data was compressed with a different model (weights or config differ); "
                         "decompress it with the model that compressed it.")
    codec = make_codec(model, header.bin_bits, header.z_max)
    try:
        dtype = np.dtype(header.dtype)
    except TypeError:
        raise ValueError(f"The compressed data names an unknown dtype {header.dtype!r}; the file is damaged.") from None
    D = math.prod(codec.model.event_shape)
    if math.prod(header.shape[1:]) != D:
        raise ValueError(f"The compressed data holds examples of shape {header.shape[1:]}, but this model "
                         f"codes {D} values per example; use the model that compressed it.")
    coder = constriction.stream.stack.AnsCoder(payload)
    prior, (mu_p, sd_p) = codec.prior_family, codec.prior()
    out = np.empty((header.count, D), dtype=np.int32)
    for i in tqdm(range(header.count - 1, -1, -1), disable=not progress, unit="example", desc="decompress"):
        z = coder.decode(prior, mu_p, sd_p)  # pop z ~ P(z)
        family, params = codec.likelihood(z)
        out[i] = coder.decode(family, *params)  # pop x ~ p(x|z)
        for zd, q in reversed(list(zip(z.tolist(), codec.posterior(out[i])))):
            coder.encode_reverse(zd, q)  # give the bits back to Q(z|x), last latent first
    try:
        rest = coder.get_compressed(unseal=True)
    except AssertionError:  # constriction: not in the sealed state compress left it in: the payload is damaged
        rest = None
    x = out.astype(dtype).reshape(header.shape)
    init = initial_words(codec.model.latent_dim)
    if rest is None or not np.array_equal(rest, init) or data_hash(x) != header.data_hash:
        raise ValueError("Decoding did not reproduce the original data (its hash differs); the file is "
                         "damaged or was made on a platform whose arithmetic differs from this one.")
    return torch.from_numpy(x) if header.container == "torch" else x


__all__ = ["Header", "compress", "decompress", "read_header"]
