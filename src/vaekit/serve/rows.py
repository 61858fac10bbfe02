"""What one row of a model's data looks like to a user, and JSON rows <-> arrays, checked.

A ``RowSpec`` says how rows arrive in a request body (``{"x": [row, ...]}``): an image as a nested
array (C, H, W), (H, W) or flat; a feature vector; or a table row in the original columns (numbers and
category names, ``null`` for a missing cell where the model allows it). Every problem with a request's
rows is a ``BadInput`` whose message is one sentence naming the problem and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MAX_ROWS = 4096  # rows per request
MAX_VALUES = 1 << 22  # numbers per request (rows x values per row)


class BadInput(ValueError):
    """A request the model cannot answer; the message is one sentence for the caller (HTTP 4xx)."""


@dataclass
class RowSpec:
    kind: str  # "image", "array" or "table"; "histories" or "smiles" for the applications' own requests
    shape: tuple[int, ...]  # one row as the user sends it: (C, H, W), (D,) or (n_columns,)
    columns: list[str] = field(default_factory=list)  # feature or column names (arrays and tables)
    categories: dict[str, list[str]] = field(default_factory=dict)  # table: categorical column -> categories
    missing: bool = False  # table cells may be null (the model masks them)
    picture: tuple[int, ...] = ()  # (C, H, W) to draw a row as a picture; () = not a picture

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def describe(self) -> str:
        if self.kind == "image":
            return f"an image of shape {list(self.shape)} (nested arrays, values in [0, 1]) or its {self.size} values flat"
        if self.kind == "histories":
            return "a list of clicked item ids (numbers or strings, as the model was fitted)"
        if self.kind == "smiles":
            return "a SMILES string"
        if self.kind == "table":
            return f"a list of {len(self.columns)} values in the column order {self.columns[:8]}" + (
                " (null for a missing value)" if self.missing else "")
        return f"a list of {self.size} numbers"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "shape": list(self.shape), "columns": self.columns,
                "categories": self.categories, "missing": self.missing, "picture": list(self.picture)}


def check_count(n: int, what: str = "x") -> None:
    if n < 1:
        raise BadInput(f"{what} is empty; send at least one row.")
    if n > MAX_ROWS:
        raise BadInput(f"{what} has {n} rows; send at most {MAX_ROWS} rows per request.")


def numbers(x, what: str) -> np.ndarray:
    """A nested list of numbers as float32; text, null, ragged rows or non-finite values are refused."""
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError, OverflowError, RecursionError):
        arr = None
    if arr is None or arr.dtype.kind not in "biuf":
        raise BadInput(f"{what} must be a rectangular nested list of numbers (no text, null or rows of "
                       "different lengths).")
    if arr.size > MAX_VALUES:
        raise BadInput(f"{what} holds {arr.size} numbers; send at most {MAX_VALUES} per request.")
    with np.errstate(over="ignore", invalid="ignore"):
        arr = arr.astype(np.float32)  # beyond float32's range becomes inf, refused below
    if not np.isfinite(arr).all():
        raise BadInput(f"{what} contains NaN or infinite values (or numbers beyond float32); send finite numbers.")
    return arr


def parse_rows(spec: RowSpec, x, columns: list[str] | None = None) -> np.ndarray | pd.DataFrame:
    """Rows from a request: an array (N, *spec.shape) for images and vectors, a DataFrame in the
    model's column order for tables."""
    if not isinstance(x, list):
        raise BadInput(f"x must be a list of rows, each {spec.describe()}.")
    check_count(len(x))
    if spec.kind == "table":
        return parse_table(spec, x, columns)
    if columns is not None and list(columns) != list(spec.columns):
        raise BadInput(f"columns do not match the model's features {spec.columns[:8]}; send them in that order "
                       "or leave columns out.")
    arr = numbers(x, "x")
    if arr.shape[1:] in (tuple(spec.shape), (spec.size,)) or (
            spec.kind == "image" and spec.shape[0] == 1 and arr.shape[1:] == tuple(spec.shape[1:])):
        return arr.reshape(len(arr), *spec.shape)
    raise BadInput(f"x has rows of shape {list(arr.shape[1:])}; each row must be {spec.describe()}.")


def parse_table(spec: RowSpec, x: list, columns: list[str] | None) -> pd.DataFrame:
    names = list(spec.columns)
    if columns is not None:
        if sorted(map(str, columns)) != sorted(names) or len(columns) != len(names):
            missing = [c for c in names if c not in columns]
            extra = [c for c in columns if c not in names]
            raise BadInput(f"columns differ from the model's (missing {missing[:5]}, unexpected {extra[:5]}); "
                           f"send the columns {names[:8]}.")
        names = [str(c) for c in columns]
    width = len(names)
    for i, row in enumerate(x):
        if not isinstance(row, list) or len(row) != width:
            raise BadInput(f"Row {i} of x is not a list of {width} values; each row must be {spec.describe()}.")
        for j, v in enumerate(row):
            if v is None:
                if not spec.missing:
                    raise BadInput(f"Row {i}, column {names[j]!r} is null; this model needs every value.")
            elif isinstance(v, (list, dict)):
                raise BadInput(f"Row {i}, column {names[j]!r} holds a nested value; send a number or a category name.")
            elif isinstance(v, float) and not math.isfinite(v):
                raise BadInput(f"Row {i}, column {names[j]!r} is not a finite number; send a finite value.")
            elif names[j] not in spec.categories and isinstance(v, (str, bool)):
                raise BadInput(f"Row {i}, column {names[j]!r} must be a number, got {v!r}.")
            elif isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53:
                raise BadInput(f"Row {i}, column {names[j]!r} is too large a number; send a value below 2**53.")
    frame = pd.DataFrame(x, columns=names, dtype=object)[list(spec.columns)]
    for c in spec.columns:
        frame[c] = frame[c].map(lambda v: v if v is None else str(v)) if c in spec.categories \
            else pd.to_numeric(frame[c]).astype(np.float64)
    return frame


def labels(class_names: list[str], y, n: int) -> np.ndarray:
    """Class names (or their integer spelling) -> indices, one per row (a single label is repeated)."""
    if not isinstance(y, list):
        y = [y]
    if len(y) == 1 and n > 1:
        y = y * n
    if len(y) != n:
        raise BadInput(f"y has {len(y)} labels for {n} rows; send one label per row (or one for all).")
    index = {name: i for i, name in enumerate(class_names)}
    out = []
    for v in y:
        key = str(v) if isinstance(v, (str, int)) and not isinstance(v, bool) else None
        if key not in index:
            raise BadInput(f"Unknown label {v!r}; the model knows the labels {class_names[:10]}.")
        out.append(index[key])
    return np.asarray(out, np.int64)


def covariates(size: int, y, n: int) -> np.ndarray:
    arr = numbers(y, "y")
    if arr.ndim == 1 and arr.shape == (size,):
        arr = np.repeat(arr[None], n, 0)
    if arr.shape != (n, size):
        raise BadInput(f"y has shape {list(arr.shape)}; send {size} covariates per row ({n} rows).")
    return arr


def to_json(values: np.ndarray, digits: int = 6) -> list:
    """Numbers as nested lists, rounded; NaN and infinities (JSON has none) become null."""
    arr = np.round(np.asarray(values, np.float64), digits)
    if np.isfinite(arr).all():
        return arr.tolist()
    out = arr.astype(object)
    out[~np.isfinite(arr)] = None
    return out.tolist()


def finite(obj):
    """A JSON-able structure with every NaN or infinite float replaced by null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def table_json(frame: pd.DataFrame) -> list:
    """Table rows as JSON values: numbers as floats (null for missing), categories as strings."""
    rows = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return finite([[round(v, 6) if isinstance(v, float) else (v.item() if hasattr(v, "item") else v) for v in r]
                   for r in rows])
