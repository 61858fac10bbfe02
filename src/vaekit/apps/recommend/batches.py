"""Sparse rows -> dense batches, one batch at a time (the whole users x items matrix is never dense)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler


class SparseRows(Dataset):
    """Indexed by a list of row numbers; returns those rows as one dense float32 tensor (B, I)."""

    def __init__(self, X: sp.csr_matrix):
        self.X = sp.csr_matrix(X, dtype=np.float32)

    def __len__(self) -> int:
        return self.X.shape[0]

    def __getitem__(self, rows) -> torch.Tensor:
        return torch.from_numpy(self.X[rows].toarray())


def sparse_loader(X: sp.csr_matrix, *, batch_size: int, shuffle: bool = False, seed: int = 0) -> DataLoader:
    """A DataLoader of dense (B, I) batches of the rows of ``X``; shuffled with its own seeded
    generator, so the order is the same on every run with the same seed."""
    data = SparseRows(X)
    order = RandomSampler(data, generator=torch.Generator().manual_seed(seed)) if shuffle else SequentialSampler(data)
    return DataLoader(data, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None)


def dense_batches(X: sp.csr_matrix, batch_size: int, device: torch.device):
    """(start, dense batch on ``device``) over the rows of ``X`` in order."""
    X = sp.csr_matrix(X, dtype=np.float32)
    for start in range(0, X.shape[0], batch_size):
        yield start, torch.from_numpy(X[start: start + batch_size].toarray()).to(device)


class PhasedSampler(Sampler):
    """One epoch = ``encoder_passes`` shuffled passes over the rows tagged phase 0 (encoder steps),
    then ``decoder_passes`` tagged phase 1 (decoder steps): RecVAE's alternating schedule
    (Shenbin et al. 2020, sec. 3.5). Yields (row numbers, phase)."""

    def __init__(self, n: int, batch_size: int, *, encoder_passes: int, decoder_passes: int, seed: int):
        self.n, self.batch_size, self.passes = n, batch_size, (encoder_passes, decoder_passes)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return sum(self.passes) * -(-self.n // self.batch_size)

    def __iter__(self):
        for phase, passes in enumerate(self.passes):
            for _ in range(passes):
                order = torch.randperm(self.n, generator=self.generator).tolist()
                for start in range(0, self.n, self.batch_size):
                    yield order[start: start + self.batch_size], phase


class PhasedRows(SparseRows):
    """Indexed by (row numbers, phase); returns (dense rows (B, I), phase repeated (B,))."""

    def __getitem__(self, key) -> tuple[torch.Tensor, torch.Tensor]:
        rows, phase = key
        return super().__getitem__(rows), torch.full((len(rows),), phase, dtype=torch.long)


def phased_loader(X: sp.csr_matrix, *, batch_size: int, encoder_passes: int = 3, decoder_passes: int = 1,
                  seed: int = 0) -> DataLoader:
    """A DataLoader of (dense batch, phase) pairs for alternating encoder/decoder updates; the phase
    (0 = encoder, 1 = decoder) reaches the objective as ``y``."""
    sampler = PhasedSampler(X.shape[0], batch_size, encoder_passes=encoder_passes, decoder_passes=decoder_passes,
                            seed=seed)
    return DataLoader(PhasedRows(X), sampler=sampler, batch_size=None)
