"""``TimeSeriesDetector``: Donut-style anomaly detection on monitoring metrics (Xu et al. 2018).

A VAE models sliding windows of ``window`` time steps over one or many metrics. Missing points and
points labelled anomalous are masked out of the training likelihood. Each timestamp is scored by its
window's last point (the reconstruction probability of the last point by default, as in Donut); the
first ``window - 1`` timestamps use windows padded with missing values, so every timestamp gets a score.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from vaekit.apps.anomaly import AnomalyDetector
from vaekit.apps.anomaly_table import TableLayout
from vaekit.io import load_model, save_model
from vaekit.runtime import resolve_device

ESTIMATOR = "TimeSeriesDetector"


def read_series(data, *, timestamp: str | None = "timestamp", name: str = "series") -> tuple[pd.DataFrame, pd.Index]:
    """(metrics frame with float columns, timestamps) from a DataFrame, Series or array (T,)/(T, M).

    A DataFrame column named ``timestamp`` is parsed and must be strictly increasing."""
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if not isinstance(data, pd.DataFrame):
        arr = np.asarray(data, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValueError(f"{name} is {arr.ndim}-D; pass (T,) or (T, n_metrics) values.")
        data = pd.DataFrame(arr, columns=[str(i) for i in range(arr.shape[1])])
    frame = data.copy()
    frame.columns = [str(c) for c in frame.columns]
    if timestamp is not None and timestamp in frame.columns:
        try:
            times = pd.Index(pd.to_datetime(frame.pop(timestamp)), name=timestamp)
        except (ValueError, TypeError) as e:
            raise ValueError(f"The {timestamp!r} column of {name} is not a valid timestamp column ({e}).") from None
        if times.isna().any():
            raise ValueError(f"The {timestamp!r} column of {name} has {int(times.isna().sum())} empty timestamps; "
                             "fill or drop those rows.")
        if times.has_duplicates:
            raise ValueError(f"{name} has duplicated timestamps (first: {times[times.duplicated()][0]}); "
                             "aggregate or drop the repeated rows.")
        if not times.is_monotonic_increasing:
            bad = int(np.flatnonzero(np.diff(times.asi8) < 0)[0]) + 1
            raise ValueError(f"The timestamps of {name} are not in increasing order (row {bad}: {times[bad]}); "
                             "sort the rows by time.")
    else:
        times = pd.RangeIndex(len(frame), name="index")
    bad_cols = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad_cols:
        raise ValueError(f"{name} has non-numeric metric columns {bad_cols[:5]}; pass numeric metrics only.")
    if frame.shape[1] == 0:
        raise ValueError(f"{name} has no metric columns besides the timestamp.")
    values = frame.astype(np.float64)
    if np.isinf(values.to_numpy()).any():
        raise ValueError(f"{name} has infinite values; replace them with NaN (missing) or finite numbers.")
    return values, times


def windows(values: np.ndarray, window: int) -> np.ndarray:
    """(T, window * M): row t holds the points t-window+1 .. t (time-major), NaN before the start."""
    T, M = values.shape
    padded = np.concatenate([np.full((window - 1, M), np.nan), values]).astype(np.float32)
    idx = np.arange(T)[:, None] + np.arange(window)[None, :]  # (T, window)
    return padded[idx].reshape(T, window * M)


class TimeSeriesDetector(BaseEstimator):
    """Sliding-window VAE detector with a per-timestamp score (higher = more anomalous).

    ``fit(series, labels=None)``: ``labels`` (0/1 per timestamp, optional) marks known anomalies,
    which are masked out of training like missing values. ``contamination`` sets ``threshold_`` on the
    training scores. Other parameters are those of :class:`AnomalyDetector`; ``trim`` defaults to 0
    here because known anomalies are masked out through ``labels`` instead.
    """

    def __init__(self, *, window: int = 60, score: str = "recon_prob", contamination: float = 0.01,
                 latent_dim: int = 8, hidden: tuple[int, ...] = (64, 64), epochs: int | str = "auto",
                 steps: int = 3000, batch_size: int = 128, lr: float = 1e-3, patience: int = 20,
                 validation_fraction: float = 0.1, min_scale: float = 0.05, trim: float = 0.0, k: int = 100,
                 timestamp: str = "timestamp", random_state: int | None = 0, device: str = "cpu",
                 verbose: int = 0):
        self.window, self.score, self.contamination, self.latent_dim = window, score, contamination, latent_dim
        self.hidden, self.epochs, self.steps, self.batch_size, self.lr = hidden, epochs, steps, batch_size, lr
        self.patience, self.validation_fraction, self.min_scale, self.k = patience, validation_fraction, min_scale, k
        self.timestamp, self.random_state, self.device, self.verbose = timestamp, random_state, device, verbose
        self.trim = trim

    def _inner(self) -> AnomalyDetector:
        keys = ("score", "contamination", "latent_dim", "hidden", "epochs", "steps", "batch_size", "lr",
                "patience", "validation_fraction", "min_scale", "trim", "k", "random_state", "device", "verbose")
        return AnomalyDetector(**{k: getattr(self, k) for k in keys})

    def _values(self, series, name: str, *, check_metrics: bool = True) -> tuple[np.ndarray, pd.Index]:
        frame, times = read_series(series, timestamp=self.timestamp, name=name)
        if check_metrics and list(frame.columns) != self.metrics_:
            raise ValueError(f"{name} has metric columns {list(frame.columns)[:5]} but the detector was "
                             f"fitted on {self.metrics_[:5]}; pass the same metrics.")
        if len(frame) < int(self.window):
            raise ValueError(f"{name} has {len(frame)} points, fewer than the window of {self.window}; "
                             "pass a longer series or choose a smaller window.")
        return frame.to_numpy(), times

    def fit(self, series, labels=None):
        """Fit on a series that is mostly normal; ``labels`` (optional) marks known anomalies."""
        if int(self.window) < 2:
            raise ValueError(f"window must be at least 2 time steps, got {self.window}.")
        raw, _ = self._values(series, "series", check_metrics=False)
        self.metrics_ = list(read_series(series, timestamp=self.timestamp)[0].columns)
        values = raw
        if labels is not None:
            labels = np.asarray(labels).astype(bool).ravel()
            if len(labels) != len(values):
                raise ValueError(f"labels has {len(labels)} entries but the series has {len(values)} points.")
            values = np.where(labels[:, None], np.nan, values)  # known anomalies: masked like missing points
        obs = [v[np.isfinite(v)] for v in values.T]
        if any(len(o) < 2 for o in obs):
            raise ValueError("A metric has fewer than 2 observed (non-missing, non-anomalous) points; "
                             "nothing can be learned from it.")
        self.mean_ = np.array([o.mean() for o in obs])
        std = np.array([o.std() for o in obs])
        self.scale_ = np.where(std > 1e-12 * np.maximum(1.0, np.abs(self.mean_)), std, 1.0)
        W, M = int(self.window), len(self.metrics_)
        names = [f"{m}[t-{W - 1 - j}]" for j in range(W) for m in self.metrics_]
        layout = TableLayout(columns=names, numeric=names, mean=np.tile(self.mean_, W).tolist(),
                             scale=np.tile(self.scale_, W).tolist())
        self.detector_ = self._inner()
        self.detector_.layout_ = layout
        self.detector_._fit_array(windows((values - self.mean_) / self.scale_, W), score=False)
        self.last_ = np.zeros(W * M, np.float32)
        self.last_[-M:] = 1.0  # the features of the window's last time step
        self.decision_scores_ = self._score_values(raw)[0]
        self.threshold_ = float(np.quantile(self.decision_scores_, 1.0 - float(self.contamination)))
        return self

    def _score_values(self, values: np.ndarray):
        x = windows((values - self.mean_) / self.scale_, int(self.window))
        s, c = self.detector_._score_array(x, features=self.last_)
        return s, c[:, -len(self.metrics_):]

    def decision_function(self, series) -> np.ndarray:
        """Score per timestamp (T,): the last point of each window (nats for likelihood scores)."""
        return self._score_values(self._values(series, "series")[0])[0]

    def explain(self, series) -> pd.DataFrame:
        """Per-metric contributions to each timestamp's score, indexed by timestamp."""
        values, times = self._values(series, "series")
        return pd.DataFrame(self._score_values(values)[1], columns=self.metrics_, index=times)

    def predict(self, series) -> np.ndarray:
        return (self.decision_function(series) > self.threshold_).astype(int)

    def save(self, path: str | Path, *, overwrite: bool = False, notes: dict | None = None) -> Path:
        path = Path(path)
        if (path / "config.json").exists() and not overwrite:
            raise ValueError(f"{path} already holds a saved model; choose another directory or pass overwrite=True.")
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()}
        d = self.detector_
        extra = {"estimator": ESTIMATOR, "params": params, "notes": notes or {}, "metrics": self.metrics_,
                 "mean": self.mean_.tolist(), "scale": self.scale_.tolist(), "threshold": self.threshold_,
                 "inner_threshold": d.threshold_, "layout": d.layout_.to_dict(),
                 "decision_scores": self.decision_scores_.tolist()}
        return save_model(d.model_, d.model_config_, path, extra=extra)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> TimeSeriesDetector:
        model, config, extra = load_model(path, device=resolve_device(device))
        if extra.get("estimator") != ESTIMATOR:
            raise ValueError(f"{path} does not hold a TimeSeriesDetector.")
        self = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in extra["params"].items()})
        self.notes_ = extra.get("notes", {})
        self.metrics_, self.threshold_ = extra["metrics"], float(extra["threshold"])
        self.mean_, self.scale_ = np.asarray(extra["mean"]), np.asarray(extra["scale"])
        self.decision_scores_ = np.asarray(extra["decision_scores"])
        d = self.detector_ = self._inner()
        d.model_, d.model_config_, d.layout_ = model, config, TableLayout.from_dict(extra["layout"])
        d.threshold_, d.feature_names_, d.n_features_in_ = extra["inner_threshold"], d.layout_.features, len(d.layout_.columns)
        W, M = int(self.window), len(self.metrics_)
        self.last_ = np.zeros(W * M, np.float32)
        self.last_[-M:] = 1.0
        return self
