"""Autoregressive categorical likelihood over token sequences (SMILES, SELFIES, text).

    p(x | z) = prod_{t=1}^{n+1} Cat(x_t | x_<t, z),    x_{n+1} = END,

one sequence of n tokens and its end token. An example is a row of token ids: the tokens, the end
token, then padding (the padding is not part of the event and is masked). ``log_prob`` is exact, in
nats, computed with teacher forcing (the decoder reads the true previous tokens). The start and
padding symbols are never emitted (their probability is exactly 0). With ``max_len`` set, the end
token is certain after ``max_len`` tokens, so the probabilities of all sequences of up to
``max_len`` tokens sum to 1; without it (the default) the model covers sequences of any length.

The decoder is any module with
    ``initial_state(z) -> h``, ``step(tokens (N,), h, z) -> (logits (N, V), h)`` and
    ``forward(inputs (N, T), z (N, L), lengths (N,)) -> logits (N, T, V)``,
e.g. ``vaekit.nets_recurrent.GRUDecoder``. Generation: ancestral sampling (with a temperature),
greedy decoding and beam search, each on a batch of latent vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from torch.distributions import Distribution


@dataclass(frozen=True)
class SpecialTokens:
    """Ids of the symbols every vocabulary reserves."""

    pad: int = 0  # fills a row after the end token; not part of the event
    start: int = 1  # the decoder's first input; never emitted
    end: int = 2  # closes every sequence; part of the event
    unknown: int = 3  # a token not seen in training; scored, never generated


def sequence_lengths(x: torch.Tensor, specials: SpecialTokens) -> torch.Tensor:
    """Tokens in each row counting the end token (padding excluded), (N,). A row must end with the
    end token followed only by padding."""
    return (x != specials.pad).sum(-1)


def check_sequences(x: torch.Tensor, specials: SpecialTokens) -> None:
    """ValueError unless every row is ``tokens, end, pad...`` with no start or pad inside."""
    n = sequence_lengths(x, specials)
    rows = torch.arange(len(x), device=x.device)
    if (n < 1).any() or (x[rows, (n - 1).clamp(min=0)] != specials.end).any():
        raise ValueError("Every token row must end with the end token followed only by padding.")
    inside = torch.arange(x.shape[-1], device=x.device) < (n - 1).unsqueeze(-1)
    if ((x == specials.end) & inside).any() or ((x == specials.start) & inside).any():
        raise ValueError("A token row holds an end or start token before its end.")


def _forbid(logits: torch.Tensor, ids: tuple[int, ...]) -> torch.Tensor:
    """Logits with the given symbols made impossible (probability exactly 0)."""
    if not ids:
        return logits
    mask = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    mask[list(ids)] = True
    return logits.masked_fill(mask, float("-inf"))


class Constraint(Protocol):
    """(N, device) -> a state for N rows being decoded: ``allowed()`` (N, V) bool, ``advance(tokens (N,))``
    (padding for a finished row), ``reorder(index (N,))`` (beam search)."""

    def __call__(self, n: int, device) -> Any: ...


def _restrict(logits: torch.Tensor, allowed: torch.Tensor, end: int) -> torch.Tensor:
    """Logits with the tokens a constraint does not allow made impossible; a row that allows nothing
    may end."""
    allowed = allowed & (logits > float("-inf"))
    allowed[~allowed.any(-1), end] = True
    return logits.masked_fill(~allowed, float("-inf"))


class AutoregressiveCategorical(Distribution):
    """p(x|z) over token rows for a batch of latent vectors ``z`` of shape (*batch, L).

    ``log_prob(x)`` takes rows of shape (B, T) (or (*batch, T)) and returns (*batch,) nats; with
    ``z`` of shape (k, B, L) each row is scored under each of the k samples (shape (k, B)).
    ``word_dropout`` (Bowman et al. 2016, section 3.3) replaces that fraction of the decoder's
    teacher-forced inputs by the unknown token: a training device only; the result is then not
    log p(x|z), so leave it at 0 to score.
    """

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(self, decoder: nn.Module, z: torch.Tensor, *, specials: SpecialTokens = SpecialTokens(),
                 max_len: int | None = None, word_dropout: float = 0.0):
        self.decoder, self.z, self.specials = decoder, z, specials
        self.max_len, self.word_dropout = max_len, float(word_dropout)
        super().__init__(batch_shape=z.shape[:-1], validate_args=False)

    # -- scoring -----------------------------------------------------------------------------------
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        s = self.specials
        lead = self.z.shape[:-1]  # (B,) or (k, B)
        x = x.long()
        n = sequence_lengths(x, s)  # (B,) tokens + end
        width = int(n.max()) if x.numel() else 0
        x = x[..., :width]
        x = x.expand(*lead, width).reshape(-1, width)  # (N, T), N = prod(lead)
        n = n.expand(lead).reshape(-1)
        z = self.z.reshape(-1, self.z.shape[-1])  # (N, L)
        inputs = torch.cat([torch.full_like(x[:, :1], s.start), x[:, :-1]], 1)  # teacher forcing
        inputs = inputs.masked_fill(inputs == s.pad, s.end)  # after the end: ignored, any real id
        if self.word_dropout > 0:
            drop = torch.rand(inputs.shape, device=inputs.device) < self.word_dropout
            drop[:, 0] = False
            inputs = inputs.masked_fill(drop, s.unknown)
        logits = self.decoder(inputs, z, n).float()  # (N, T, V)
        log_p = self.log_softmax(logits)
        targets = x.masked_fill(x == s.pad, s.end)
        picked = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (N, T)
        valid = torch.arange(width, device=x.device) < n.unsqueeze(-1)
        return (picked * valid).sum(-1).reshape(lead)

    def log_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """log p(x_t = v | x_<t, z) for every position t = 0, 1, ...: start and padding impossible,
        and, past ``max_len`` tokens, the end token certain."""
        s = self.specials
        log_p = _forbid(logits, (s.pad, s.start)).log_softmax(-1)
        if self.max_len is not None and logits.shape[-2] > self.max_len:
            forced = torch.full_like(log_p[..., self.max_len:, :], float("-inf"))
            forced[..., s.end] = 0.0
            log_p = torch.cat([log_p[..., : self.max_len, :], forced], -2)
        return log_p

    # -- generation --------------------------------------------------------------------------------
    def sample(self, sample_shape=(), *, temperature: float = 1.0, max_len: int = 200,
               exclude: tuple[int, ...] | None = None) -> torch.Tensor:
        """Ancestral samples, rows (N, T) of ``tokens, end, pad...``; ``sample_shape`` must be empty
        (one sequence per latent vector). ``exclude`` (default: the unknown token) is never drawn:
        the other symbols are renormalised. ``max_len`` caps generation (the row ends there)."""
        if len(torch.Size(sample_shape)):
            raise ValueError("Draw several sequences by passing several latent vectors.")
        return generate(self.decoder, self.z.reshape(-1, self.z.shape[-1]), specials=self.specials,
                        greedy=False, temperature=temperature, max_len=self._cap(max_len),
                        exclude=self._exclude(exclude))

    def greedy(self, *, max_len: int = 200, exclude: tuple[int, ...] | None = None) -> torch.Tensor:
        """The most probable next token at every step."""
        return generate(self.decoder, self.z.reshape(-1, self.z.shape[-1]), specials=self.specials,
                        greedy=True, max_len=self._cap(max_len), exclude=self._exclude(exclude))

    def beam(self, width: int = 5, *, max_len: int = 200, exclude: tuple[int, ...] | None = None) -> torch.Tensor:
        """Beam search: the row of highest log p(x|z) among ``width`` kept hypotheses."""
        return beam_search(self.decoder, self.z.reshape(-1, self.z.shape[-1]), specials=self.specials,
                           width=width, max_len=self._cap(max_len), exclude=self._exclude(exclude))

    def with_word_dropout(self, rate: float) -> AutoregressiveCategorical:
        """The same distribution whose ``log_prob`` replaces a fraction ``rate`` of the decoder's inputs
        by the unknown token (a training device; the result is then not log p(x|z))."""
        return AutoregressiveCategorical(self.decoder, self.z, specials=self.specials, max_len=self.max_len,
                                         word_dropout=rate)

    def _cap(self, max_len: int) -> int:
        return max_len if self.max_len is None else min(max_len, self.max_len)

    def _exclude(self, exclude):
        return (self.specials.unknown,) if exclude is None else tuple(exclude)


@torch.no_grad()
def generate(decoder: nn.Module, z: torch.Tensor, *, specials: SpecialTokens = SpecialTokens(),
             greedy: bool = False, temperature: float = 1.0, max_len: int = 200,
             exclude: tuple[int, ...] = (), constraint: Constraint | None = None) -> torch.Tensor:
    """One row per latent vector z (N, L): sampled (``greedy=False``) or greedy tokens, ended by the
    end token (forced after ``max_len`` tokens) and padded. Returns (N, T) long. ``constraint`` (a
    function (N, device) -> state with ``allowed()`` (N, V) bool, ``advance(tokens)`` and
    ``reorder(index)``, e.g. a grammar) limits each step to the tokens it allows."""
    if temperature <= 0 and not greedy:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    s = specials
    N = z.shape[0]
    h = decoder.initial_state(z)
    token = torch.full((N,), s.start, dtype=torch.long, device=z.device)
    done = torch.zeros(N, dtype=torch.bool, device=z.device)
    state = constraint(N, z.device) if constraint is not None else None
    out = []
    for t in range(max_len + 1):
        logits, h = decoder.step(token, h, z)
        logits = _forbid(logits.float(), (s.pad, s.start, *exclude))
        if state is not None:
            logits = _restrict(logits, state.allowed(), s.end)
        if t == max_len:
            token = torch.full_like(token, s.end)
        elif greedy:
            token = logits.argmax(-1)
        else:
            token = torch.multinomial((logits / temperature).softmax(-1), 1).squeeze(-1)
        token = token.masked_fill(done, s.pad)
        if state is not None:
            state.advance(token)
        out.append(token)
        done |= token == s.end
        if bool(done.all()):
            break
    return torch.stack(out, 1)


@torch.no_grad()
def beam_search(decoder: nn.Module, z: torch.Tensor, *, specials: SpecialTokens = SpecialTokens(),
                width: int = 5, max_len: int = 200, exclude: tuple[int, ...] = (),
                constraint: Constraint | None = None) -> torch.Tensor:
    """Beam search over log p(x|z) (summed, not length-normalised), each step limited to the tokens
    ``constraint`` allows (see ``generate``). Returns (N, T) long rows."""
    s = specials
    N, W = z.shape[0], int(width)
    zw = z.repeat_interleave(W, 0)  # (N*W, L)
    h = decoder.initial_state(zw)
    token = torch.full((N * W,), s.start, dtype=torch.long, device=z.device)
    score = torch.full((N, W), float("-inf"), device=z.device)
    score[:, 0] = 0.0  # all beams start identical: keep one
    done = torch.zeros(N, W, dtype=torch.bool, device=z.device)
    history = torch.zeros(N, W, 0, dtype=torch.long, device=z.device)
    state = constraint(N * W, z.device) if constraint is not None else None
    for t in range(max_len + 1):
        logits, h = decoder.step(token, h, zw)
        logits = _forbid(logits.float(), (s.pad, s.start, *exclude))
        if state is not None:
            logits = _restrict(logits, state.allowed(), s.end)
        log_p = logits.log_softmax(-1).view(N, W, -1)
        V = log_p.shape[-1]
        if t == max_len:
            log_p = torch.full_like(log_p, float("-inf"))
            log_p[..., s.end] = 0.0
        # a finished beam only extends by padding at no cost
        finished = torch.full_like(log_p, float("-inf"))
        finished[..., s.pad] = 0.0
        log_p = torch.where(done.unsqueeze(-1), finished, log_p)
        cand = (score.unsqueeze(-1) + log_p).view(N, W * V)
        score, idx = cand.topk(W, -1)  # (N, W)
        beam, token2 = idx // V, idx % V
        history = torch.cat([history.gather(1, beam.unsqueeze(-1).expand(-1, -1, history.shape[-1])),
                             token2.unsqueeze(-1)], -1)
        done = done.gather(1, beam) | (token2 == s.end)
        flat = (beam + torch.arange(N, device=z.device).unsqueeze(-1) * W).view(-1)
        h = h[:, flat] if h.dim() == 3 else h[flat]
        if state is not None:
            state.reorder(flat)
            state.advance(token2.view(-1))  # a finished beam's padding leaves its state as it is
        token = token2.view(-1).masked_fill(done.view(-1), s.end)
        if bool(done.all()):
            break
    return history[:, 0]  # topk sorts: beam 0 has the highest log-probability


class SequenceLikelihood(nn.Module):
    """The observation model of a sequence VAE: ``likelihood(decoder, z)`` is ``px``, an
    ``AutoregressiveCategorical`` over token rows. ``n_params`` is the vocabulary size (the decoder's
    outputs per position); ``mean(px)`` is the greedy decoding, ``sample(px)`` an ancestral sample."""

    name = "autoregressive_categorical"

    def __init__(self, *, vocab_size: int, specials: SpecialTokens = SpecialTokens(), max_len: int | None = None):
        super().__init__()
        self.n_params, self.specials, self.max_len = int(vocab_size), specials, max_len

    def forward(self, decoder: nn.Module, z: torch.Tensor, *, word_dropout: float = 0.0) -> AutoregressiveCategorical:
        return AutoregressiveCategorical(decoder, z, specials=self.specials, max_len=self.max_len,
                                         word_dropout=word_dropout)

    def mean(self, px: AutoregressiveCategorical) -> torch.Tensor:
        return px.greedy()

    def sample(self, px: AutoregressiveCategorical) -> torch.Tensor:
        return px.sample()
