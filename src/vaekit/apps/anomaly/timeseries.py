"""``TimeSeriesDetector``: Donut-style anomaly detection on monitoring metrics (Xu et al. 2018).

A VAE models sliding windows of ``window`` time steps over one or many metrics. Missing points and
points labelled anomalous are masked out of the training likelihood. Each timestamp is scored by its
window's last point (the reconstruction probability of the last point by default, as in Donut); the
first ``window - 1`` timestamps use windows padded with missing values, so every timestamp gets a score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from vaekit import checks
from vaekit.apps.anomaly.detector import PARAMS, training
from vaekit.apps.anomaly.scores import score_rows, train_model
from vaekit.estimators.base import Estimator
from vaekit.train import split_validation


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


class TimeSeriesDetector(Estimator):
    """Sliding-window VAE detector with a per-timestamp score (higher = more anomalous).

    ``fit(series, labels=None)``: ``labels`` (0/1 per timestamp, optional) marks known anomalies,
    which are masked out of training like missing values. ``contamination`` sets ``threshold_`` on the
    training scores. Other parameters are those of ``AnomalyDetector``; ``trim`` defaults to 0 here
    because known anomalies are masked out through ``labels`` instead. A ``timestamp`` column that the
    series lacks is an error (pass ``timestamp=None`` for a series indexed by position).
    """

    PARAMS = {**PARAMS, "window": lambda n, v: checks.integer(n, v, low=2),
              "contamination": lambda n, v: checks.real(n, v, low=0.0, high=0.5, low_open=True)}
    ALIASES = {"score": "scoring"}

    def __init__(self, *, window: int = 60, scoring: str = "recon_prob", contamination: float = 0.01,
                 latent_dim: int = 8, hidden: tuple[int, ...] = (64, 64), epochs: int | str = "auto",
                 steps: int = 3000, batch_size: int = 128, lr: float = 1e-3, patience: int = 20,
                 validation_fraction: float = 0.1, min_scale: float = 0.05, trim: float = 0.0, k: int = 100,
                 timestamp: str | None = "timestamp", device: str = "auto", precision: str = "auto",
                 random_state: int | None = 0, verbose: int = 0, **deprecated):
        self.window, self.scoring, self.contamination, self.latent_dim = window, scoring, contamination, latent_dim
        self.hidden, self.epochs, self.steps, self.batch_size, self.lr = hidden, epochs, steps, batch_size, lr
        self.patience, self.validation_fraction, self.min_scale, self.k = patience, validation_fraction, min_scale, k
        self.timestamp, self.trim = timestamp, trim
        self.device, self.precision, self.random_state, self.verbose = device, precision, random_state, verbose
        self._take_aliases(deprecated)

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
        self._check_params()
        named = self.timestamp not in (None, "timestamp")  # the default name may be absent: positions
        if named and isinstance(series, pd.DataFrame) and self.timestamp not in series.columns:
            raise ValueError(f"The series has no timestamp column {self.timestamp!r} (its columns are "
                             f"{[str(c) for c in series.columns][:8]}); name the right column or pass "
                             "timestamp=None for a series indexed by position.")
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
        x = windows((values - self.mean_) / self.scale_, int(self.window))
        t = training(self, len(x), self.patience > 0)
        x_train, x_val = split_validation(x, float(self.validation_fraction), int(self.patience), t.seed)
        t.patience = t.patience if x_val is not None else 0
        columns = [{"name": n, "kind": "numeric"} for n in self.feature_names_]
        with self._runtime():
            self.model_, self.model_config_, self.history_ = train_model(x_train, columns, t, x_val)
        self.decision_scores_ = self._score_values(raw)[0]
        self.threshold_ = float(np.quantile(self.decision_scores_, 1.0 - float(self.contamination)))
        return self

    @property
    def feature_names_(self) -> list[str]:
        W = int(self.window)
        return [f"{m}[t-{W - 1 - j}]" for j in range(W) for m in self.metrics_]

    @property
    def last_(self) -> np.ndarray:
        """0/1 mask over the window's features: the last time step."""
        mask = np.zeros(int(self.window) * len(self.metrics_), np.float32)
        mask[-len(self.metrics_):] = 1.0
        return mask

    def _score_values(self, values: np.ndarray):
        """Per-timestamp scores and per-metric contributions of the last point (original units)."""
        self._check_fitted()
        x = windows((values - self.mean_) / self.scale_, int(self.window))
        with self._runtime():
            s, c = score_rows(self.model_, torch.from_numpy(x), kind=self.scoring, k=int(self.k), seed=0,
                              features=torch.from_numpy(self.last_))
        s, c = s.numpy(), c.numpy()[:, -len(self.metrics_):]
        if self.scoring != "recon_error":  # the last point's observed log scales
            observed = np.isfinite(x[:, -len(self.metrics_):])
            c = c + observed * np.log(self.scale_)
            s = s + (observed * np.log(self.scale_)).sum(1)
        return s, c

    def _model_inputs(self, series):
        """Every window of the series (model arrays) and its log-Jacobian."""
        self._check_fitted()
        x = windows((self._values(series, "series")[0] - self.mean_) / self.scale_, int(self.window))
        scales = np.tile(np.log(self.scale_), int(self.window))
        return torch.from_numpy(x), -(np.isfinite(x) * scales).sum(1)

    def decision_function(self, series) -> np.ndarray:
        """Score per timestamp (T,): the last point of each window (nats for likelihood scores)."""
        self._check_fitted()
        return self._score_values(self._values(series, "series")[0])[0]

    def explain(self, series) -> pd.DataFrame:
        """Per-metric contributions to each timestamp's score, indexed by timestamp."""
        self._check_fitted()
        values, times = self._values(series, "series")
        return pd.DataFrame(self._score_values(values)[1], columns=self.metrics_, index=times)

    def predict(self, series) -> np.ndarray:
        return (self.decision_function(series) > self.threshold_).astype(int)

    def _fitted_state(self) -> dict:
        return {"metrics": self.metrics_, "mean": self.mean_.tolist(), "scale": self.scale_.tolist(),
                "threshold": self.threshold_, "decision_scores": self.decision_scores_.tolist(),
                "notes": getattr(self, "notes_", {})}

    def _restore(self, state: dict) -> None:
        self.notes_ = state.get("notes", {})
        self.metrics_, self.threshold_ = state["metrics"], float(state["threshold"])
        self.mean_, self.scale_ = np.asarray(state["mean"]), np.asarray(state["scale"])
        self.decision_scores_ = np.asarray(state["decision_scores"])
