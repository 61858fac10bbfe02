"""Tabular preprocessing as plain JSON: numeric columns standardised, string columns one-hot.

A ``spec`` is a dict ``{"columns": [...]}``, fitted on the training rows and stored with the run, so
model outputs come back in the original units and categories. Standardising x -> (x - mean) / std
changes densities by the log-Jacobian ``-sum(log std)`` nats per example (``log_jacobian``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def fit_table(df: pd.DataFrame, *, standardize: bool = True) -> dict:
    """Preprocessing spec for ``df``: mean/std per numeric column, sorted categories per string column."""
    if df.shape[1] == 0:
        raise ValueError("The table has no feature columns; check the label option and the file.")
    columns = []
    for name in df.columns:
        col = df[name]
        missing = int(col.isna().sum())
        if missing:
            raise ValueError(f"Column {name!r} has {missing} missing value(s); fill or drop them first.")
        if is_numeric(col):
            values = col.to_numpy(dtype=np.float64)
            std = float(values.std()) if standardize else 1.0
            columns.append({"name": str(name), "kind": "numeric",
                            "mean": float(values.mean()) if standardize else 0.0,
                            "std": std if std > 1e-8 else 1.0})  # constant columns stay put
        else:
            categories = sorted(map(str, col.unique()))
            columns.append({"name": str(name), "kind": "categorical", "categories": categories})
    return {"columns": columns}


def encode_table(df: pd.DataFrame, spec: dict) -> np.ndarray:
    """(N, D) float32 model input for ``df`` under ``spec``; a ValueError names any mismatch."""
    missing = [c["name"] for c in spec["columns"] if c["name"] not in df.columns]
    if missing:
        raise ValueError(f"The table lacks column(s) {missing[:5]} that the model was trained on.")
    parts = []
    for c in spec["columns"]:
        col = df[c["name"]]
        if col.isna().any():
            raise ValueError(f"Column {c['name']!r} has missing values; fill or drop them first.")
        if c["kind"] == "numeric":
            if not is_numeric(col):
                raise ValueError(f"Column {c['name']!r} should be numeric but holds text such as "
                                 f"{col.iloc[0]!r}; fix the file.")
            parts.append(((col.to_numpy(np.float64) - c["mean"]) / c["std"])[:, None])
        else:
            values = col.astype(str).to_numpy()
            unseen = sorted(set(values) - set(c["categories"]))
            if unseen:
                raise ValueError(f"Column {c['name']!r} has categories {unseen[:3]} not seen in training.")
            parts.append((values[:, None] == np.asarray(c["categories"])[None, :]).astype(np.float64))
    return np.concatenate(parts, axis=1).astype(np.float32)


def decode_table(x: np.ndarray, spec: dict) -> pd.DataFrame:
    """Model-space rows (N, D) back to a table: un-standardised numbers, most likely category."""
    out, i = {}, 0
    for c in spec["columns"]:
        if c["kind"] == "numeric":
            out[c["name"]] = x[:, i] * c["std"] + c["mean"]
            i += 1
        else:
            width = len(c["categories"])
            out[c["name"]] = np.asarray(c["categories"], dtype=object)[x[:, i : i + width].argmax(1)]
            i += width
    return pd.DataFrame(out)


def feature_names(spec: dict) -> list[str]:
    """Names of the model's input columns: ``age`` for numbers, ``colour=red`` for one-hot columns."""
    names = []
    for c in spec["columns"]:
        names += [c["name"]] if c["kind"] == "numeric" else [f"{c['name']}={v}" for v in c["categories"]]
    return names


def log_jacobian(spec: dict | None) -> float:
    """log |d x_model / d x_original| per example in nats: add it to a model-space log-density."""
    if not spec:
        return 0.0
    return -sum(math.log(c["std"]) for c in spec["columns"] if c["kind"] == "numeric")
