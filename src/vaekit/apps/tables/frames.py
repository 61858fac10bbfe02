"""What a synthesizer checks and remembers about a user's data frame before the table stack sees it:
bad input (one sentence each), ID-like columns (left out of the model, refilled with fresh IDs),
and the column order and dtypes that samples must come back with.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd

MIN_ROWS = 2
MIN_ROWS_FOR_IDS = 20  # fewer rows: all-unique text is as likely a small category set as an ID


def check_frame(frame, *, name: str = "the table") -> pd.DataFrame:
    """A copy of ``frame`` with string column names; a ValueError names any problem."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame (got {type(frame).__name__}); e.g. pd.read_csv(path).")
    if frame.shape[1] == 0:
        raise ValueError(f"{name} has no columns; pass a table with at least one column.")
    if len(frame) < MIN_ROWS:
        raise ValueError(f"{name} has {len(frame)} row(s); a synthesizer needs at least {MIN_ROWS} rows "
                         "(in practice hundreds) to learn from.")
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise ValueError(f"{name} has duplicate column names {dup[:3]}; rename them so each is unique.")
    frame = frame.set_axis(names, axis=1).reset_index(drop=True)
    for c in names:
        check_one_type(frame[c], c, name)
    return frame


def value_kind(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "boolean"
    if isinstance(v, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(v, (pd.Timestamp, np.datetime64)) or hasattr(v, "isoformat"):
        return "date"
    return "text"


def check_one_type(col: pd.Series, c: str, name: str) -> None:
    """Refuse a column whose cells mix numbers, text, booleans or dates (an object column)."""
    if col.dtype != object or not pd.api.types.infer_dtype(col, skipna=True).startswith("mixed"):
        return
    kinds = {}
    for v in col.dropna():
        kinds.setdefault(value_kind(v), v)
        if len(kinds) > 1:
            (k1, v1), (k2, v2) = list(kinds.items())[:2]
            raise ValueError(f"Column {c!r} of {name} mixes types ({k1} {v1!r} and {k2} {v2!r}); convert it "
                             f"to one type first, e.g. df[{c!r}] = df[{c!r}].astype(str).")


def id_like(col: pd.Series) -> bool:
    """Text (or object) values, every one different, in a table long enough to tell."""
    values = col.dropna()
    return (col.dtype == object or pd.api.types.is_string_dtype(col)) and len(values) >= MIN_ROWS_FOR_IDS \
        and values.nunique() == len(col)


def find_ids(frame: pd.DataFrame, ids, *, name: str = "the table") -> list[str]:
    """The ID columns: ``ids="auto"`` detects all-unique text columns (with a warning), a list names them."""
    if ids == "auto":
        found = [c for c in frame.columns if id_like(frame[c])]
        for c in found:
            warnings.warn(f"Column {c!r} of {name} looks like an ID (every value unique text); it is left out "
                          "of the model and filled with fresh unique IDs in samples.", UserWarning, stacklevel=3)
        return found
    found = [str(c) for c in (ids or ())]
    unknown = [c for c in found if c not in frame.columns]
    if unknown:
        raise ValueError(f"id_columns names {unknown} that are not columns of {name}; its columns are "
                         f"{list(frame.columns)[:10]}.")
    return found


def fresh_ids(n: int, rng: np.random.Generator, *, prefix: str = "syn-") -> np.ndarray:
    """``n`` unique random IDs ("syn-" and 16 hex digits), never a real record's ID by construction."""
    out: set[str] = set()
    while len(out) < n:
        out.update(f"{prefix}{v:016x}" for v in rng.integers(0, 2**62, n - len(out), dtype=np.int64))
    return np.array(sorted(out), dtype=object)[rng.permutation(n)]


def all_missing(frame: pd.DataFrame, *, name: str = "the table") -> list[str]:
    """Columns with no observed value (warned: they come back all missing)."""
    found = [c for c in frame.columns if frame[c].isna().all()]
    for c in found:
        warnings.warn(f"Column {c!r} of {name} is entirely missing; it is not modelled and comes back all "
                      "missing in samples.", UserWarning, stacklevel=3)
    return found


def restore(frame: pd.DataFrame, dtypes: dict[str, str], order: list[str]) -> pd.DataFrame:
    """Samples in the training column order, each column in its training dtype where it converts."""
    out = {}
    for c in order:
        col, dtype = frame[c], dtypes.get(c, "")
        if str(col.dtype) != dtype and dtype:
            with contextlib.suppress(TypeError, ValueError):  # e.g. missing cells keep an integer column Int64
                col = col.astype(dtype)
        out[c] = col
    return pd.DataFrame(out)
