"""Tables -> model arrays for anomaly detection, and back to feature names.

Numeric columns are standardised with the mean and standard deviation of their observed (non-missing)
training values. A numeric column that is constant at fit time becomes a two-slot block (equal to the
fit-time value, or not), so a new row where it changes is scored as the unseen event it is. Categorical columns become one-hot blocks with one extra slot for categories never seen at fit
time. A missing value is NaN in the model array (the whole block for a categorical column), so the
likelihood can mask it out instead of imputing it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

UNSEEN = "<unseen>"


@dataclass
class TableLayout:
    columns: list[str]  # every input column, in fit order
    numeric: list[str] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    constant: list[str] = field(default_factory=list)  # constant at fit time
    constant_value: list[float] | None = None  # their values; None: saved before they were modelled
    categorical: dict[str, list[str]] = field(default_factory=dict)  # name -> known categories
    from_frame: bool = False  # fitted on a DataFrame (columns checked by name)

    @property
    def features(self) -> list[str]:
        """Modelled features, in the order of the per-feature scores."""
        return self.numeric + list(self.categorical) + self.modelled_constant

    @property
    def groups(self) -> list[tuple[int, int]]:
        """(start, size) of each categorical one-hot block in the model array."""
        start, out = len(self.numeric), []
        for size in [len(cats) + 1 for cats in self.categorical.values()] + [2] * len(self.modelled_constant):
            out.append((start, size))
            start += size
        return out

    @property
    def modelled_constant(self) -> list[str]:
        """Fit-time constant columns with a [equal, different] block in the model array."""
        return self.constant if self.constant_value is not None else []

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(size for _, size in self.groups)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TableLayout:
        return cls(**d)


def as_frame(X, *, name: str = "X") -> tuple[pd.DataFrame, bool]:
    """A DataFrame view of X (numpy, torch or pandas) and whether X was a DataFrame."""
    if isinstance(X, pd.DataFrame):
        return X, True
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} is {X.ndim}-D; pass a 2-D table (n_samples, n_features).")
    return pd.DataFrame(X, columns=[str(i) for i in range(X.shape[1])]), False


def fit_layout(X, *, categorical=(), name: str = "X") -> TableLayout:
    """Learn standardisation and categories from the training table X."""
    frame, is_frame = as_frame(X, name=name)
    if len(frame) == 0 or frame.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {frame.shape}); pass at least one row and one column.")
    cols = [str(c) for c in frame.columns]
    frame.columns = cols
    declared = {str(c) for c in categorical}
    unknown = declared - set(cols)
    if unknown:
        raise ValueError(f"categorical names columns {sorted(unknown)} that are not in {name}; "
                         f"its columns are {cols[:10]}.")
    layout = TableLayout(columns=cols, from_frame=is_frame, constant_value=[])
    for c in cols:
        s = frame[c]
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if c in declared or not numeric:
            cats = sorted({str(v) for v in s.dropna().unique()})
            layout.categorical[c] = cats
            continue
        v = s.to_numpy(dtype=np.float64)
        if np.isinf(v).any():
            raise ValueError(f"Column {c!r} of {name} has infinite values; replace them with NaN "
                             "(missing) or finite numbers.")
        obs = v[np.isfinite(v)]
        std = float(obs.std()) if len(obs) else 0.0
        if len(obs) == 0 or std <= 1e-12 * max(1.0, abs(float(obs.mean()))):
            layout.constant.append(c)
            layout.constant_value.append(float(obs.mean()) if len(obs) else float("nan"))
            continue
        layout.numeric.append(c)
        layout.mean.append(float(obs.mean()))
        layout.scale.append(std)
    if not (layout.numeric or layout.categorical):
        raise ValueError(f"Every column of {name} is constant; there is nothing to model.")
    return layout


def check_columns(layout: TableLayout, frame: pd.DataFrame, is_frame: bool, name: str) -> pd.DataFrame:
    cols = [str(c) for c in frame.columns]
    frame = frame.set_axis(cols, axis=1)
    if is_frame and layout.from_frame:
        missing = [c for c in layout.columns if c not in cols]
        extra = [c for c in cols if c not in layout.columns]
        if missing or extra:
            raise ValueError(f"{name} has different columns than at fit time (missing: {missing[:5]}, "
                             f"unexpected: {extra[:5]}); pass a table with the columns {layout.columns[:10]}.")
        return frame[layout.columns]
    if len(cols) != len(layout.columns):
        raise ValueError(f"{name} has {len(cols)} columns but the detector was fitted on "
                         f"{len(layout.columns)}; pass data with the same columns.")
    return frame.set_axis(layout.columns, axis=1)


def to_model_array(layout: TableLayout, X, *, name: str = "X") -> np.ndarray:
    """(N, layout.width) float32: standardised numeric columns, then one-hot blocks; NaN = missing."""
    frame, is_frame = as_frame(X, name=name)
    frame = check_columns(layout, frame, is_frame, name)
    n = len(frame)
    if n == 0:
        raise ValueError(f"{name} has no rows.")
    out = np.zeros((n, layout.width), np.float32)
    if layout.numeric:
        try:
            num = frame[layout.numeric].to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} has non-numeric values in numeric columns ({e}); "
                             "declare such columns with categorical=[...].") from None
        if np.isinf(num).any():
            raise ValueError(f"{name} has infinite values; replace them with NaN (missing) or finite numbers.")
        out[:, : len(layout.numeric)] = (num - np.asarray(layout.mean)) / np.asarray(layout.scale)
    n_cat = len(layout.categorical)
    for (start, size), (c, cats) in zip(layout.groups, layout.categorical.items()):
        s = frame[c]
        missing = s.isna().to_numpy()
        index = {v: i for i, v in enumerate(cats)}
        codes = np.array([index.get(str(v), size - 1) for v in s], dtype=np.int64)  # last slot: unseen
        block = np.zeros((n, size), np.float32)
        block[np.arange(n), codes] = 1.0
        block[missing] = np.nan
        out[:, start : start + size] = block
    for (start, _), c, value in zip(layout.groups[n_cat:], layout.modelled_constant, layout.constant_value or []):
        v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64)
        missing = frame[c].isna().to_numpy()
        same = np.isclose(v, value, rtol=1e-9, atol=0.0) | (np.isnan(value) & missing)
        out[:, start] = same
        out[:, start + 1] = ~same
        out[missing & ~np.isnan(value), start : start + 2] = np.nan
    return out


def log_scale(layout: TableLayout) -> np.ndarray:
    """log of each modelled feature's standardisation scale (0 for categorical features): adding it
    to a per-feature negative log-density converts standardised units back to the original ones."""
    return np.concatenate([np.log(np.asarray(layout.scale, np.float64)),
                           np.zeros(len(layout.categorical) + len(layout.modelled_constant))])
