"""Recurrent networks over token sequences: no probability code here.

``GRUEncoder``: token rows (B, T) -> features (B, out_features), for ``models.GaussianEncoder``.
``GRUDecoder``: the network behind ``vaekit.sequence.AutoregressiveCategorical``; it reads the
previous token and z at every step and returns next-token logits.
Rows are ``tokens, end, pad...`` (pad id 0 by default). The GRUs run over padded batches, not packed
sequences: on a CPU packing was 2-3x slower per step (measured for this module), and the outputs past
each row's end are simply not read.
"""

from __future__ import annotations

import torch
from torch import nn


def reverse_rows(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's first ``lengths[i]`` entries in reverse order; the padding stays where it is."""
    t = torch.arange(x.shape[1], device=x.device)
    idx = torch.where(t < lengths.unsqueeze(-1), lengths.unsqueeze(-1) - 1 - t, t)  # (B, T)
    return x.gather(1, idx)


class GRUEncoder(nn.Module):
    """Embedding, then a GRU reading each row forwards and one reading it backwards; the features are
    both GRUs' states at the row's last token, (B, 2 * hidden). Padding is never read."""

    def __init__(self, vocab_size: int, *, embed_dim: int = 64, hidden: int = 256, layers: int = 1,
                 pad: int = 0):
        super().__init__()
        self.pad = pad
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad)
        self.forward_gru = nn.GRU(embed_dim, hidden, layers, batch_first=True)
        self.backward_gru = nn.GRU(embed_dim, hidden, layers, batch_first=True)
        self.out_features = 2 * hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.long()
        lengths = (x != self.pad).sum(-1).clamp(min=1)  # (B,)
        x = x[:, : int(lengths.max())]
        last = (lengths - 1).view(-1, 1, 1)
        states = []
        for gru, rows in ((self.forward_gru, x), (self.backward_gru, reverse_rows(x, lengths))):
            y, _ = gru(self.embed(rows))  # (B, T, H)
            states.append(y.gather(1, last.expand(-1, 1, y.shape[-1])).squeeze(1))  # (B, H) at the last token
        return torch.cat(states, -1)


class GRUDecoder(nn.Module):
    """h_0 = tanh(W z); at step t the GRU reads [embed(x_{t-1}), z] and emits logits for x_t.

    Feeding z at every step (not only in h_0) keeps the latent code in reach of every prediction,
    which makes posterior collapse less likely (Bowman et al. 2016 feed it once; Gomez-Bombarelli
    et al. 2018 repeat it)."""

    def __init__(self, vocab_size: int, latent_dim: int, *, embed_dim: int = 64, hidden: int = 512,
                 layers: int = 1, pad: int = 0):
        super().__init__()
        self.layers, self.hidden = layers, hidden
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad)
        self.init = nn.Linear(latent_dim, layers * hidden)
        self.gru = nn.GRU(embed_dim + latent_dim, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def initial_state(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.init(z))  # (N, layers * H)
        return h.view(len(z), self.layers, self.hidden).transpose(0, 1).contiguous()  # (layers, N, H)

    def forward(self, inputs: torch.Tensor, z: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: inputs (N, T) -> logits (N, T, V). Positions past a row's length (``lengths``,
        unused here: the GRU is causal) hold outputs nobody reads."""
        T = inputs.shape[1]
        e = torch.cat([self.embed(inputs), z.unsqueeze(1).expand(-1, T, -1).to(self.embed.weight.dtype)], -1)
        y, _ = self.gru(e, self.initial_state(z))  # (N, T, H)
        return self.out(y)

    def step(self, token: torch.Tensor, h: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One generation step: previous tokens (N,) and state -> logits (N, V) and the new state."""
        e = torch.cat([self.embed(token), z.to(self.embed.weight.dtype)], -1).unsqueeze(1)  # (N, 1, E + L)
        y, h = self.gru(e, h)
        return self.out(y[:, 0]), h
