"""Detection metrics for scores where higher = more anomalous: ROC AUC, PR AUC (average precision)
and the best F1 over all thresholds, with and without point adjustment (Xu et al. 2018, Donut: a
labelled anomaly segment counts as fully detected when any of its points is flagged)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score


def segments(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of consecutive 1s."""
    padded = np.concatenate([[0], np.asarray(labels, int), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2], edges[1::2]))


def point_adjust(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Scores with every labelled segment raised to its maximum: thresholding these gives exactly
    the point-adjusted predictions at that threshold."""
    out = np.array(scores, dtype=np.float64, copy=True)
    for start, stop in segments(labels):
        out[start:stop] = out[start:stop].max()
    return out


def best_f1(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(best F1 over thresholds, the threshold achieving it); predictions are score >= threshold."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    i = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    return float(f1[i]), float(thresholds[i]) if len(thresholds) else float("nan")


def detection_metrics(labels, scores) -> dict[str, float]:
    """ROC AUC, PR AUC and best F1 (raw and point-adjusted) for 0/1 ``labels``."""
    labels = np.asarray(labels, int)
    scores = np.asarray(scores, np.float64)
    if labels.shape != scores.shape:
        raise ValueError(f"labels has shape {labels.shape} but scores has {scores.shape}; pass one label per score.")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values; score every point before computing metrics.")
    if labels.min() == labels.max():
        raise ValueError("labels are all one class; metrics need both normal (0) and anomalous (1) points.")
    return {"roc_auc": float(roc_auc_score(labels, scores)),
            "pr_auc": float(average_precision_score(labels, scores)),
            "best_f1": best_f1(labels, scores)[0],
            "best_f1_pa": best_f1(labels, point_adjust(labels, scores))[0]}
