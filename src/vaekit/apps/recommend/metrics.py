"""Ranking metrics for top-k recommendation (Liang et al. 2018, sec. 4.2), per user, higher is better.

``scores`` is a dense (n_users, n_items) array where items a user must not be recommended (the
fold-in history) are already ``-inf``; ``held_out`` is the (n_users, n_items) 0/1 matrix of the items
to find. A user with no held-out items has no defined recall or NDCG and gets NaN.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's k highest scores, best first, (n_users, k); ties keep the lower index."""
    scores = np.asarray(scores)
    k = min(int(k), scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.tile(
        np.arange(scores.shape[1]), (len(scores), 1))
    part.sort(axis=1)  # lower index first among equal scores (stable argsort below)
    order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


def exclude(scores: np.ndarray, history) -> np.ndarray:
    """A copy of ``scores`` with the items in ``history`` (sparse or dense, nonzero = seen) at -inf."""
    scores = np.array(scores, dtype=np.float64)
    rows, cols = (sp.csr_matrix(history) if not sp.issparse(history) else history.tocsr()).nonzero()
    scores[rows, cols] = -np.inf
    return scores


def _hits(scores, held_out, k) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    held = sp.csr_matrix(held_out) if not sp.issparse(held_out) else held_out.tocsr()
    top = top_k(scores, k)  # (n, k)
    hit = np.asarray(held[np.arange(len(top))[:, None], top].todense()) > 0  # (n, k)
    n_held = np.asarray((held > 0).sum(1)).ravel()
    return hit, n_held, top


def recall_at_k(scores, held_out, k: int) -> np.ndarray:
    """Normalised Recall@k: hits in the top k / min(k, number of held-out items) (Liang et al. eq. 11)."""
    hit, n_held, _ = _hits(scores, held_out, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_held > 0, hit.sum(1) / np.minimum(k, n_held), np.nan)


def ndcg_at_k(scores, held_out, k: int) -> np.ndarray:
    """NDCG@k with binary relevance: sum over hits of 1 / log2(rank + 1), divided by the same sum for
    a perfect ranking of min(k, held-out) items (ranks start at 1)."""
    hit, n_held, _ = _hits(scores, held_out, k)
    discount = 1.0 / np.log2(np.arange(2, hit.shape[1] + 2))  # (k,)
    dcg = (hit * discount).sum(1)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(n_held, hit.shape[1])]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_held > 0, dcg / ideal, np.nan)


def coverage(scores, k: int) -> float:
    """Catalogue coverage: the fraction of items that appear in at least one user's top k."""
    top = top_k(scores, k)
    return float(len(np.unique(top)) / np.asarray(scores).shape[1])


def evaluate_scores(scores, history, held_out, *, ks=(20, 50, 100)) -> dict[str, float]:
    """Mean NDCG@100, Recall@k for each k and coverage@20 over users with held-out items; the
    ``history`` items are excluded from the ranking first."""
    s = exclude(scores, history)
    out = {"ndcg@100": float(np.nanmean(ndcg_at_k(s, held_out, 100)))}
    for k in ks:
        out[f"recall@{k}"] = float(np.nanmean(recall_at_k(s, held_out, k)))
    out["coverage@20"] = coverage(s, 20)
    return out
