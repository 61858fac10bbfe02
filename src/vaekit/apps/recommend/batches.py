"""Sparse rows -> dense batches, one batch at a time (the whole users x items matrix is never dense)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler


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
