"""Content-based recommendation: a VAE over item features (genres, year, title, any table).

    content = ContentRecommender(item="item_id").fit(items)   # one row per item
    content.similar_items(50, n=10)     # (item ids, cosine similarities) in the embedding space
    content.transform(new_items)        # embeddings of items from their features alone

Every column but the item id becomes 0/1 features: a numeric column (>= ``n_bins`` distinct
values) is cut into ``n_bins`` quantile bins, any other column into its whitespace- or ``|``-separated
tokens that occur in at least ``min_count`` items (genres, title words, categories). The model is the
core VAE (``family="vae"``) with a Bernoulli likelihood on those features, so ``score_samples`` would
be nats; the embedding of an item is its posterior mean E_q[z|x].
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from vaekit.apps.recommend.data import label
from vaekit.config import CONSTANT_LR, ModelConfig, TrainConfig, build_model
from vaekit.estimators.base import Estimator
from vaekit.evaluate import posterior_means
from vaekit.train import fit

SEPARATORS = re.compile(r"[\s|,;]+")


@dataclass
class ContentLayout:
    """How item columns become 0/1 features: per column, bin edges or a token vocabulary."""

    item: str
    bins: dict[str, list[float]] = field(default_factory=dict)
    tokens: dict[str, list[str]] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return sum(len(e) + 1 for e in self.bins.values()) + sum(len(t) for t in self.tokens.values())


def tokens_of(value) -> list[str]:
    return [] if pd.isna(value) else [t for t in SEPARATORS.split(str(value).lower()) if t]


def fit_layout(frame: pd.DataFrame, item: str, *, n_bins: int = 10, min_count: int = 2) -> ContentLayout:
    layout = ContentLayout(item)
    for col in frame.columns:
        if col == item:
            continue
        values = pd.to_numeric(frame[col], errors="coerce")
        numeric = values.notna().mean() > 0.9 and values.nunique() >= n_bins
        if numeric:
            edges = np.unique(np.nanquantile(values, np.linspace(0, 1, n_bins + 1)[1:-1]))
            layout.bins[str(col)] = [float(e) for e in edges]
        else:
            counts = pd.Series([t for v in frame[col] for t in set(tokens_of(v))]).value_counts()
            layout.tokens[str(col)] = sorted(counts.index[counts >= min_count].tolist())
    if layout.n_features == 0:
        raise ValueError("The item features give no usable feature (every column is the id, or no value is "
                         "shared by two items); pass columns such as genres, year or title.")
    return layout


def encode(layout: ContentLayout, frame: pd.DataFrame) -> np.ndarray:
    """(n_items, n_features) float32 0/1; a missing value sets no feature of its column."""
    blocks = []
    for col, edges in layout.bins.items():
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(np.float64) if col in frame else np.full(len(frame), np.nan)
        onehot = np.zeros((len(frame), len(edges) + 1), np.float32)
        ok = np.isfinite(values)
        onehot[np.flatnonzero(ok), np.searchsorted(edges, values[ok], side="right")] = 1.0
        blocks.append(onehot)
    for col, vocab in layout.tokens.items():
        index = {t: j for j, t in enumerate(vocab)}
        multi = np.zeros((len(frame), len(vocab)), np.float32)
        for i, v in enumerate(frame[col] if col in frame else [None] * len(frame)):
            for t in tokens_of(v):
                if t in index:
                    multi[i, index[t]] = 1.0
        blocks.append(multi)
    return np.concatenate(blocks, 1)


def item_frame(item_features: pd.DataFrame, item: str) -> pd.DataFrame:
    if not isinstance(item_features, pd.DataFrame):
        raise ValueError(f"item_features must be a pandas DataFrame, got {type(item_features).__name__}.")
    if item not in item_features.columns:
        raise ValueError(f"item_features has no column {item!r} (its columns: {list(item_features.columns)[:10]}); "
                         "name the item id column with item=...")
    if len(item_features) == 0:
        raise ValueError("item_features has no rows; pass one row per item.")
    dup = item_features[item].duplicated()
    if dup.any():
        raise ValueError(f"item_features lists {int(dup.sum())} item(s) more than once; keep one row per item.")
    return item_features.reset_index(drop=True)


class ContentRecommender(Estimator):
    """A VAE over item content; item embeddings for similar items and for items without clicks."""

    def __init__(self, *, item: str = "item", latent_dim: int = 32, hidden: tuple[int, ...] = (256,),
                 n_bins: int = 10, min_count: int = 2, epochs: int = 100, batch_size: int = 128, lr: float = 1e-3,
                 device: str = "auto", precision: str = "fp32", random_state: int | None = 0, verbose: int = 0):
        self.item, self.latent_dim, self.hidden, self.n_bins, self.min_count = item, latent_dim, hidden, n_bins, min_count
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.device, self.precision, self.random_state, self.verbose = device, precision, random_state, verbose

    def fit(self, item_features: pd.DataFrame, y=None):
        frame = item_frame(item_features, self.item)
        self.layout_ = fit_layout(frame, self.item, n_bins=self.n_bins, min_count=self.min_count)
        x = torch.from_numpy(encode(self.layout_, frame))  # (n_items, F)
        seed = self._seed()
        self.model_config_ = ModelConfig(family="vae", input_shape=(x.shape[1],), latent_dim=self.latent_dim,
                                         hidden=tuple(self.hidden), activation="relu", likelihood="bernoulli")
        torch.manual_seed(seed)
        self.model_ = build_model(self.model_config_)
        cfg = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=seed, device=self.device,
                          precision=self.precision, progress=bool(self.verbose), **CONSTANT_LR)
        self.history_ = fit(self.model_, x, config=cfg)
        self.model_.eval()
        self.items_ = [label(v) for v in frame[self.item]]
        self.embeddings_ = posterior_means(self.model_, x.to(self._device())).numpy()
        return self

    def transform(self, item_features: pd.DataFrame) -> np.ndarray:
        """Embeddings E_q[z|x] (n_items, latent_dim) of items from their features alone."""
        self._check_fitted()
        x = torch.from_numpy(encode(self.layout_, item_frame(item_features, self.item)))
        return posterior_means(self.model_, x.to(self._device())).numpy()

    def similar_items(self, item, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` items most similar to ``item`` (cosine similarity of embeddings), itself excluded:
        (item ids, similarities), best first."""
        self._check_fitted()
        index = {str(v): i for i, v in enumerate(self.items_)}
        if str(label(item)) not in index:
            raise ValueError(f"Item {item!r} is not among the {len(self.items_)} items the model was fitted on.")
        unit = unit_rows(self.embeddings_)
        sims = unit @ unit[index[str(label(item))]]
        sims[index[str(label(item))]] = -np.inf
        top = np.argsort(-sims, kind="stable")[: int(n)]
        return np.asarray(self.items_, dtype=object)[top], sims[top]

    def _fitted_state(self) -> dict:
        return {"layout": asdict(self.layout_), "items": self.items_, "embeddings": self.embeddings_.tolist()}

    def _restore(self, state: dict) -> None:
        self.layout_ = ContentLayout(**state["layout"])
        self.items_ = list(state["items"])
        self.embeddings_ = np.asarray(state["embeddings"], np.float32)


def unit_rows(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
