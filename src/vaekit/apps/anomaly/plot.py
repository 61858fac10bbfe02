"""Pictures of anomaly scores (matplotlib, Agg): a histogram with the threshold for tables; the
series with flagged points and the score underneath for time series. Files are written atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vaekit.io import atomic_write


def save_figure(fig, path: str | Path) -> Path:
    path = Path(path)
    try:
        return atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight"))
    finally:
        plt.close(fig)


def plot_table(scores: np.ndarray, threshold: float, path: str | Path, *, unit: str = "nats",
               noun: str = "rows") -> Path:
    """Histogram of the scores (of table rows, or of a series' timestamps: ``noun``) with the
    threshold line; counts on a log scale so that a few outliers stay visible."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(scores, bins=min(100, max(10, len(scores) // 20)), color="#4c72b0")
    ax.axvline(threshold, color="#c44e52", ls="--", label=f"threshold {threshold:.3g}")
    flagged = int((scores > threshold).sum())
    ax.set(xlabel=f"anomaly score ({unit}, higher = more anomalous)", ylabel=f"{noun} (log scale)",
           title=f"{flagged} of {len(scores)} {noun} flagged")
    ax.set_yscale("log")
    ax.legend()
    return save_figure(fig, path)


def label_spans(labels: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) positions of each run of consecutive 1s in a 0/1 array."""
    padded = np.concatenate([[0], (np.asarray(labels) > 0).astype(int), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def plot_series(times, values: pd.DataFrame, scores: np.ndarray, threshold: float, path: str | Path, *,
                unit: str = "nats", labels: np.ndarray | None = None) -> Path:
    """Each metric with flagged timestamps marked, and the score with its threshold underneath;
    ``labels`` (0/1 per timestamp, optional) shades the known anomalous windows on every panel."""
    m = values.shape[1]
    fig, axes = plt.subplots(m + 1, 1, figsize=(10, 2.2 * (m + 1)), sharex=True)
    flagged = scores > threshold
    x = np.asarray(times)
    spans = label_spans(labels) if labels is not None else []
    for j, (first, last) in enumerate(spans):
        for i, ax in enumerate(axes):
            ax.axvspan(x[first], x[last], color="#dd8452", alpha=0.25, lw=0,
                       label="labelled anomaly" if i == 0 and j == 0 else None)
    for ax, col in zip(axes[:-1], values.columns):
        v = values[col].to_numpy()
        ax.plot(x, v, lw=0.7, color="#4c72b0")
        ax.scatter(x[flagged], v[flagged], s=12, color="#c44e52", zorder=3, label="flagged")
        ax.set_ylabel(str(col))
    axes[0].legend(loc="upper right")
    axes[0].set_title(f"{int(flagged.sum())} of {len(scores)} timestamps flagged")
    axes[-1].plot(x, scores, lw=0.7, color="#55a868")
    axes[-1].axhline(threshold, color="#c44e52", ls="--", label=f"threshold {threshold:.3g}")
    axes[-1].legend(loc="upper right")
    axes[-1].set_ylabel(f"score ({unit})")
    return save_figure(fig, path)
