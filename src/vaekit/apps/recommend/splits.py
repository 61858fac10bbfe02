"""The strong-generalisation protocol (Liang et al. 2018, sec. 4.1; ``dawenl/vae_cf``).

Users, not ratings, are split: models train on the training users' full histories; each held-out
(validation or test) user shows a random 80% of their clicks (fold-in) and the other 20% are scored.
Items never clicked by a training user are dropped from every part, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class FoldIn:
    """Held-out users: ``history`` is shown to the model, ``held_out`` is to be found (same columns)."""

    history: sp.csr_matrix
    held_out: sp.csr_matrix
    users: np.ndarray  # their row numbers in the matrix that was split


@dataclass
class StrongSplit:
    train: sp.csr_matrix  # training users x kept items
    val: FoldIn
    test: FoldIn
    items: np.ndarray  # column numbers of the kept items in the matrix that was split
    train_users: np.ndarray


def filter_users(X: sp.csr_matrix, *, min_clicks: int = 5) -> sp.csr_matrix:
    """Rows with at least ``min_clicks`` clicks."""
    X = sp.csr_matrix(X)
    return X[np.asarray((X > 0).sum(1)).ravel() >= min_clicks]


def fold_in(X: sp.csr_matrix, *, fraction: float = 0.2, rng: np.random.Generator,
            users: np.ndarray | None = None) -> FoldIn:
    """Per row with at least 5 clicks, a random ``fraction`` of them (rounded down) goes to
    ``held_out`` and the rest to ``history``; a row with fewer clicks keeps them all as history
    (the notebook's rule)."""
    X = sp.csr_matrix(X)
    X.sort_indices()
    held = np.zeros(X.nnz, dtype=bool)  # one flag per stored click
    for u in range(X.shape[0]):
        lo, hi = X.indptr[u], X.indptr[u + 1]
        if hi - lo >= 5:
            held[lo + rng.choice(hi - lo, size=int(fraction * (hi - lo)), replace=False)] = True

    def part(mask):
        m = sp.csr_matrix((np.where(mask, X.data, 0).astype(X.dtype), X.indices.copy(), X.indptr.copy()),
                          shape=X.shape)
        m.eliminate_zeros()
        return m

    return FoldIn(part(~held), part(held), np.arange(X.shape[0]) if users is None else users)


def strong_split(X, *, n_val: int, n_test: int, fraction: float = 0.2, seed: int = 0) -> StrongSplit:
    """Split users into train / validation / test (``n_val`` and ``n_test`` held-out users), keep the
    items that training users clicked, and split each held-out user's clicks into fold-in history
    (1 - ``fraction``) and held-out items (``fraction``)."""
    X = sp.csr_matrix(X)
    n = X.shape[0]
    if n_val + n_test >= n:
        raise ValueError(f"{n_val} validation + {n_test} test users leave no training users out of {n}.")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    tr, va, te = order[: n - n_val - n_test], order[n - n_val - n_test: n - n_test], order[n - n_test:]
    items = np.flatnonzero(np.asarray((X[tr] > 0).sum(0)).ravel() > 0)
    X = X[:, items]
    return StrongSplit(X[tr], fold_in(X[va], fraction=fraction, rng=rng, users=va),
                       fold_in(X[te], fraction=fraction, rng=rng, users=te), items, tr)
