"""Interaction data: files and frames -> a sparse users x items click matrix, with checks.

Clicks are what the models see: a (user, item) pair with ``rating >= min_rating`` (or every pair
when there is no rating column) is one click. A duplicate pair is one click, not two. Every problem
in the input is one warning or one ``ValueError`` sentence that names it and the fix.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass
class Columns:
    """Names of the interaction columns in a frame or file."""

    user: str = "user"
    item: str = "item"
    rating: str | None = "rating"  # None or absent: every row is a click


def read_interactions(path: str | Path) -> pd.DataFrame:
    """A CSV, TSV (e.g. RecBole's atomic ``.inter`` files, header ``user_id:token ...``) or Parquet file
    as a frame. Type suffixes in the header (``:token``, ``:float``) are dropped from the names."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No interaction file at {p}; pass a CSV, TSV or Parquet file.")
    if p.stat().st_size == 0:
        raise ValueError(f"{p} is empty; it needs a header line and one row per interaction.")
    try:
        if p.suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        else:
            with p.open() as f:
                head = f.readline()
            sep = "\t" if "\t" in head else ","
            frame = pd.read_csv(p, sep=sep, dtype=str, keep_default_na=True)
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"Could not read {p} as a table of interactions ({e}).") from None
    frame.columns = [str(c).split(":")[0] for c in frame.columns]
    return frame


def label(value):
    """An item or user id as a JSON-able Python value (numpy ints become int, others str)."""
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (np.floating, float)) and float(value).is_integer():
        return int(value)
    return str(value)


def clicks_from_frame(frame: pd.DataFrame, columns: Columns, *, min_rating: float | None,
                      name: str = "X") -> pd.DataFrame:
    """The (user, item) click pairs of a frame: checked, filtered by rating, duplicates collapsed."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a scipy.sparse matrix or a pandas DataFrame, got {type(frame).__name__}.")
    missing = [c for c in (columns.user, columns.item) if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} has no column(s) {missing}; its columns are {list(frame.columns)[:10]}. "
                         "Name the user and item columns (user=..., item=... or --user/--item).")
    if len(frame) == 0:
        raise ValueError(f"{name} has no interactions (0 rows); pass at least one (user, item) pair.")
    ids = frame[[columns.user, columns.item]]
    no_id = ids.isna().any(axis=1)
    if no_id.any():
        warnings.warn(f"{name}: {int(no_id.sum())} interaction(s) have no user or item id; they are left out.",
                      stacklevel=3)
    frame = frame.loc[~no_id]
    if columns.rating is not None and columns.rating in frame.columns:
        rating = pd.to_numeric(frame[columns.rating], errors="coerce")
        bad = rating.isna()
        if bad.any():
            warnings.warn(f"{name}: {int(bad.sum())} interaction(s) have a missing or non-numeric rating; "
                          "they are left out.", stacklevel=3)
        if (rating < 0).any():
            raise ValueError(f"{name} has {int((rating < 0).sum())} negative rating(s) in column "
                             f"{columns.rating!r}; ratings must be >= 0: rescale them or drop those rows.")
        keep = ~bad if min_rating is None else (~bad & (rating >= min_rating))
        frame = frame.loc[keep]
    pairs = frame[[columns.user, columns.item]]
    n_dup = int(pairs.duplicated().sum())
    if n_dup:
        warnings.warn(f"{name}: {n_dup} duplicate (user, item) interaction(s) are counted once.", stacklevel=3)
        pairs = pairs.drop_duplicates()
    return pairs


def check_matrix(X, *, name: str = "X", n_items: int | None = None) -> sp.csr_matrix:
    """A users x items matrix of non-negative finite counts as float32 CSR."""
    if isinstance(X, np.ndarray) or (hasattr(X, "__array__") and not sp.issparse(X)):
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise ValueError(f"{name} is {X.ndim}-D; pass a 2-D users x items matrix.")
    X = sp.csr_matrix(X, dtype=np.float32)
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); pass at least one user and one item.")
    if not np.isfinite(X.data).all():
        raise ValueError(f"{name} contains NaN or infinite values; clicks and counts must be finite.")
    if (X.data < 0).any():
        raise ValueError(f"{name} has negative entries; pass 0/1 clicks or non-negative counts.")
    if n_items is not None and X.shape[1] != n_items:
        raise ValueError(f"{name} has {X.shape[1]} item columns but the model was fitted on {n_items}; "
                         "pass rows over the same items (or a frame of (user, item) pairs).")
    X.eliminate_zeros()
    return X


def frame_to_matrix(pairs: pd.DataFrame, columns: Columns, items: list | None = None, *,
                    name: str = "X") -> tuple[sp.csr_matrix, list, list]:
    """Click pairs -> (CSR users x items, user labels in order of first appearance, item labels).

    With ``items`` (a fitted vocabulary), unknown items are left out with one warning."""
    users = pd.unique(pairs[columns.user])
    user_index = pd.Index(users)
    if items is None:
        vocab = pd.unique(pairs[columns.item])
        try:  # numeric ids in numeric order, so the vocabulary reads naturally
            vocab = np.asarray(sorted(vocab, key=lambda v: float(v)), dtype=object)
        except (TypeError, ValueError):
            vocab = np.asarray(sorted(vocab, key=str), dtype=object)
        items = [label(v) for v in vocab]
    item_index = pd.Index([str(v) for v in items])
    cols = item_index.get_indexer(pairs[columns.item].map(lambda v: str(label(v))))
    unknown = cols < 0
    if unknown.any():
        warnings.warn(f"{name}: {int(unknown.sum())} interaction(s) with {pairs[columns.item][unknown].nunique()} "
                      "item(s) the model does not know are ignored.", stacklevel=3)
    rows = user_index.get_indexer(pairs[columns.user])
    X = sp.csr_matrix((np.ones(int((~unknown).sum()), np.float32), (rows[~unknown], cols[~unknown])),
                      shape=(len(users), len(items)))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X, [label(u) for u in users], list(items)


def synthetic_clusters(n_users: int = 400, n_items: int = 120, *, n_clusters: int = 4, clicks: int = 12,
                       noise: float = 0.1, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """Planted user clusters: each cluster clicks mostly (1 - ``noise``) inside its own block of
    items and otherwise at random. Item popularity is flat, so popularity cannot rank well.
    Returns (X, cluster of each user)."""
    rng = np.random.default_rng(seed)
    block = n_items // n_clusters
    cluster = rng.integers(n_clusters, size=n_users)
    rows, cols = [], []
    for u, c in enumerate(cluster):
        own = rng.choice(np.arange(c * block, (c + 1) * block), size=min(clicks, block), replace=False)
        other = rng.choice(n_items, size=max(1, int(clicks * noise)), replace=False)
        items = np.unique(np.concatenate([own[: int(clicks * (1 - noise))], other]))
        rows += [u] * len(items)
        cols += list(items)
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    X.data[:] = 1.0
    return X, cluster
