"""The one table preprocessing stack, as plain JSON (used by runs, ``vaekit.VAE`` on data frames and the
anomaly detectors; the table likelihood reads the same spec).

``fit_table`` learns a ``spec`` from training rows; ``encode_table`` turns a table into model arrays,
``decode_table`` turns model arrays back into a table in the original units and categories.
Model-array layout (``spec["columns"]`` order): numeric columns standardised with the mean and
standard deviation of their observed values, then one-hot blocks for categorical columns (booleans and
text included) with a last slot for categories never seen at fit time, then a two-slot block
[equal, different] per column that was constant at fit time (so a row where it changes is the unseen
event it is). A missing cell is NaN in the model array (the whole block for a categorical column): the
table likelihood masks it out. Integer-valued, non-negative and bounded numeric columns are recorded
so that decoded values keep their type and range.

Standardising x -> (x - mean) / std changes densities by -log std nats per observed numeric cell
(``log_jacobian_rows``).

Opt-in (``fit_table`` options, used by the table synthesizer; without them the spec is as above):
``components=K`` models each numeric column with a K-component mixture (``vaekit.likelihoods.table``),
discrete (a probability mass per whole number, no Jacobian) for integer columns and truncated to the
observed range, so decoded values keep their integer-ness and range, with point masses ("atoms") at
the values that hold at least 1% of the column (``atoms_of``); ``missing="model"`` adds a
two-slot block [observed, missing] per column with missing cells, so the missing pattern is modelled
and decoded (not only masked); ``keep_types=True`` models datetime columns as numbers (whole days or
seconds since 1970) and decodes datetimes, booleans and categorical dtypes back to their dtype.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

SPEC_VERSION = 2


def is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def as_table(X, *, name: str = "X") -> tuple[pd.DataFrame, bool]:
    """A DataFrame view of X (numpy, torch or pandas) and whether X was a DataFrame."""
    if isinstance(X, pd.DataFrame):
        return X, True
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.ndim == 1:
        raise ValueError(f"{name} is 1-D; pass a 2-D table (n_rows, n_columns), e.g. X.reshape(-1, 1).")
    if X.ndim != 2:
        raise ValueError(f"{name} is {X.ndim}-D; pass a 2-D table (n_rows, n_columns).")
    return pd.DataFrame(X, columns=[str(i) for i in range(X.shape[1])]), False


def numeric_values(col: pd.Series, name: str, table: str) -> np.ndarray:
    try:
        v = col.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        v = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
        bad = col[np.isnan(v) & col.notna().to_numpy()]
        raise ValueError(f"Column {name!r} of {table} is numeric but row {bad.index[0]} holds the text "
                         f"{bad.iloc[0]!r}; fix that cell or leave the column out.") from None
    if np.isinf(v).any():
        raise ValueError(f"Column {name!r} of {table} has infinite values; replace them with NaN (missing) "
                         "or finite numbers.")
    return v


def is_datetime(column: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(column)


DATETIME_UNITS = {"D": 86400 * 10**9, "s": 10**9, "ns": 1}


def datetime_values(col: pd.Series, unit: str) -> np.ndarray:
    """Datetimes as float numbers of ``unit`` since 1970-01-01 (UTC for time-zone aware columns); NaN for NaT."""
    if getattr(col.dt, "tz", None) is not None:
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    ns = col.astype("datetime64[ns]").to_numpy().astype("int64").astype(np.float64)
    ns[col.isna().to_numpy()] = np.nan
    return ns / DATETIME_UNITS[unit]


def datetime_unit(col: pd.Series) -> str:
    """The coarsest of whole days, whole seconds and nanoseconds that holds every value."""
    ns = datetime_values(col, "ns")
    ns = ns[np.isfinite(ns)]
    for unit in ("D", "s"):
        if np.all(np.mod(ns, DATETIME_UNITS[unit]) == 0):
            return unit
    return "ns"


def fit_table(df, *, standardize: bool = True, categorical=(), name: str = "the table", components: int = 0,
              missing: str = "mask", keep_types: bool = False) -> dict:
    """Preprocessing spec for the training rows ``df`` (a DataFrame or 2-D array); the options are
    described in the module docstring (their defaults give the spec every other user relies on)."""
    if missing not in ("mask", "model"):
        raise ValueError(f"missing must be 'mask' or 'model', got {missing!r}.")
    frame, from_frame = as_table(df, name=name)
    if len(frame) == 0 or frame.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {frame.shape}); pass at least one row and one column.")
    order = [str(c) for c in frame.columns]
    frame = frame.set_axis(order, axis=1)
    declared = {str(c) for c in categorical}
    unknown = declared - set(order)
    if unknown:
        raise ValueError(f"categorical names columns {sorted(unknown)} that are not in {name}; "
                         f"its columns are {order[:10]}.")
    numeric, cats, constant, indicators = [], [], [], []
    for c in order:
        col = frame[c]
        if missing == "model" and 0 < col.isna().sum() < len(col):
            indicators.append({"name": f"{c} (missing)", "kind": "missing", "of": c})
        when = keep_types and c not in declared and is_datetime(col)
        if not when and (c in declared or not is_numeric(col)):
            warn_if_id(c, col, name)
            cats.append({"name": c, "kind": "categorical", "unseen_slot": True,
                         "categories": sorted({str(v) for v in col.dropna().unique()})})
            if keep_types:
                cats[-1]["dtype"] = str(col.dtype)
            continue
        unit = datetime_unit(col) if when else None
        v = datetime_values(col, unit) if when else numeric_values(col, c, name)
        obs = v[np.isfinite(v)]
        std = float(obs.std()) if len(obs) else 0.0
        if len(obs) == 0 or std <= 1e-12 * max(1.0, abs(float(obs.mean()))):
            constant.append({"name": c, "kind": "constant", "value": float(obs.mean()) if len(obs) else None})
            if keep_types:
                constant[-1].update({"dtype": str(col.dtype)}, **({"datetime": unit} if when else {}))
            continue
        integer = bool(np.all(obs == np.round(obs)))
        numeric.append({"name": c, "kind": "numeric", "mean": float(obs.mean()) if standardize else 0.0,
                        "std": std if standardize else 1.0, "integer": integer, "dtype": str(col.dtype),
                        "min": float(obs.min()), "max": float(obs.max())})
        if when:
            numeric[-1]["datetime"] = unit
        elif not integer and (decimals := observed_decimals(obs)) is not None:
            numeric[-1]["decimals"] = decimals
        if components:
            numeric[-1]["components"] = int(components)
            numeric[-1]["atoms"] = atoms_of(obs)
    if not (numeric or cats):
        raise ValueError(f"Every column of {name} is constant; there is nothing to model.")
    return {"version": SPEC_VERSION, "order": order, "from_frame": from_frame,
            "columns": numeric + cats + constant + indicators}


def observed_decimals(obs: np.ndarray, *, most: int = 6) -> int | None:
    """The fewest decimal places that write every observed value (to float32 precision: a float32
    column's 43.8 is 43.79999924), or None when that takes more than ``most``. Decoded values are
    rounded to it, so a column kept to cents comes back in cents."""
    tol = 1e-7 * np.abs(obs)  # relative: a column of values near 1e-9 is not "0.0 to one decimal"
    return next((d for d in range(1, most + 1) if np.all(np.abs(obs - np.round(obs, d)) <= tol)), None)


def atoms_of(obs: np.ndarray, *, share: float = 0.01, most: int = 16) -> list[float]:
    """Values that hold at least ``share`` of the observed cells (at most ``most``, the largest shares):
    point masses of a mixture column, such as the 0 of a mostly-zero column."""
    values, counts = np.unique(obs, return_counts=True)
    big = np.flatnonzero(counts >= max(2, share * len(obs)))
    big = big[np.argsort(-counts[big], kind="stable")[:most]]
    return sorted(float(values[i]) for i in big)


def warn_if_id(column: str, col: pd.Series, table: str) -> None:
    """A text column whose every value differs (an ID) carries no pattern to learn, and every new row
    would hold a category never seen: say so (the synthesizer leaves such columns out itself)."""
    values = col.dropna()
    if len(values) >= 20 and values.nunique() == len(values):
        warnings.warn(f"Column {column!r} of {table} looks like an ID (all {len(values)} values differ): it "
                      "carries nothing a model can learn; leave it out (e.g. --ignore or drop the column).",
                      UserWarning, stacklevel=3)


def block_size(c: dict) -> int:
    if c["kind"] == "numeric":
        return 1
    if c["kind"] in ("constant", "missing"):
        return 2
    return len(c["categories"]) + (1 if c.get("unseen_slot") else 0)


def is_discrete(c: dict) -> bool:
    """A mixture-modelled integer column: its likelihood term is a probability mass (no Jacobian)."""
    return c["kind"] == "numeric" and bool(c.get("components")) and bool(c.get("integer"))


def mixture_column(c: dict) -> dict:
    """The likelihood's entry for a mixture column: bins of one unit for integers, support = the
    observed range (widened by half a bin for integers), all in standardised units."""
    half = 0.5 if c.get("integer") else 0.0
    return {"name": c["name"], "kind": "numeric", "components": int(c["components"]),
            "bin_width": (2 * half) / c["std"], "low": (c["min"] - half - c["mean"]) / c["std"],
            "high": (c["max"] + half - c["mean"]) / c["std"],
            "atoms": [float(np.float32((a - c["mean"]) / c["std"])) for a in c.get("atoms", ())]}


def likelihood_columns(spec: dict) -> list[dict]:
    """The table likelihood's column list for ``spec``."""
    out = []
    for c in spec["columns"]:
        if c["kind"] == "numeric":
            out.append(mixture_column(c) if c.get("components") else {"name": c["name"], "kind": "numeric"})
        else:
            out.append({"name": c["name"], "kind": "categorical", "size": block_size(c),
                        "unseen_slot": bool(c.get("unseen_slot")) or c["kind"] == "constant"})
    return out


def column_slices(spec: dict) -> dict[str, slice]:
    """Model-array slice of each spec column's block, by spec name."""
    out, i = {}, 0
    for c in spec["columns"]:
        out[c["name"]] = slice(i, i + block_size(c))
        i += block_size(c)
    return out


def width(spec: dict) -> int:
    return sum(block_size(c) for c in spec["columns"])


def check_columns(spec: dict, frame: pd.DataFrame, is_frame: bool, name: str) -> pd.DataFrame:
    order = spec.get("order") or [c["name"] for c in spec["columns"]]
    cols = [str(c) for c in frame.columns]
    frame = frame.set_axis(cols, axis=1)
    if is_frame and spec.get("from_frame", True):
        missing = [c for c in order if c not in cols]
        if missing:
            raise ValueError(f"{name} lacks column(s) {missing[:5]} that the model was trained on; pass a table "
                             f"with the columns {order[:10]}.")
        return frame
    if len(cols) != len(order):
        raise ValueError(f"{name} has {len(cols)} columns but the model was fitted on {len(order)}; pass "
                         "data with the same columns.")
    return frame.set_axis(order, axis=1)


def encode_table(df, spec: dict, *, name: str = "the table", allow_missing: bool = True) -> np.ndarray:
    """(N, width) float32 model arrays for ``df`` under ``spec``; NaN marks missing cells."""
    frame, is_frame = as_table(df, name=name)
    frame = check_columns(spec, frame, is_frame, name)
    n = len(frame)
    if n == 0:
        raise ValueError(f"{name} has no rows.")
    parts = []
    for c in spec["columns"]:
        if c["kind"] == "missing":
            gone = frame[c["of"]].isna().to_numpy()
            parts.append(np.stack([~gone, gone], 1).astype(np.float64))
            continue
        col = frame[c["name"]]
        missing = col.isna().to_numpy()
        if missing.any() and not allow_missing:
            raise ValueError(f"Column {c['name']!r} of {name} has {int(missing.sum())} missing value(s); "
                             "fill or drop them first.")
        if c["kind"] == "numeric":
            v = datetime_column(col, c, name) if c.get("datetime") else numeric_values(col, c["name"], name)
            parts.append(((v - c["mean"]) / c["std"])[:, None])
        elif c["kind"] == "constant":
            if c.get("datetime"):
                v = datetime_column(col, c, name)
            else:
                v = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
            value = np.nan if c["value"] is None else c["value"]
            same = np.isclose(v, value, rtol=1e-9, atol=0.0) | (np.isnan(value) & missing)
            block = np.stack([same, ~same], 1).astype(np.float64)
            block[missing & ~np.isnan(value)] = np.nan
            parts.append(block)
        else:
            size, cats = block_size(c), c["categories"]
            index = {v: i for i, v in enumerate(cats)}
            codes = np.array([index.get(str(v), len(cats)) for v in col], dtype=np.int64)
            unseen = (codes == len(cats)) & ~missing
            if unseen.any() and not c.get("unseen_slot"):
                raise ValueError(f"Column {c['name']!r} of {name} has categories "
                                 f"{sorted(set(col[unseen].astype(str)))[:3]} not seen in training.")
            block = np.zeros((n, size))
            block[np.arange(n)[~missing], codes[~missing]] = 1.0
            block[missing] = np.nan
            parts.append(block)
    return np.concatenate(parts, axis=1).astype(np.float32)


def datetime_column(col: pd.Series, c: dict, name: str) -> np.ndarray:
    try:
        col = pd.to_datetime(col) if not is_datetime(col) else col
    except (TypeError, ValueError):
        raise ValueError(f"Column {c['name']!r} of {name} holds dates at fit time but not here; pass "
                         "dates (or date strings) in it.") from None
    return datetime_values(col, c["datetime"])


def decode_table(x: np.ndarray, spec: dict) -> pd.DataFrame:
    """Model arrays (N, width) back to a table in the original column order: un-standardised numbers
    (rounded for integer columns, kept within the observed range), the most likely category (the
    unseen slot decodes to NaN), NaN where the model array is NaN (or a missing-indicator block says
    "missing"). Columns whose spec records a ``dtype`` (``keep_types``) get it back."""
    out, gone, i = {}, {}, 0
    for c in spec["columns"]:
        size = block_size(c)
        block = x[:, i: i + size]
        i += size
        if c["kind"] == "missing":
            gone[c["of"]] = block[:, 1] > block[:, 0]
        elif c["kind"] == "numeric":
            v = block[:, 0].astype(np.float64) * c["std"] + c["mean"]
            if "min" in c:
                v = np.clip(v, c["min"], c["max"])
            v = np.round(v) if c.get("integer") else np.round(v, c["decimals"]) if "decimals" in c else v
            out[c["name"]] = v if c.get("datetime") else restore_dtype(v, c.get("dtype", ""))
        elif c["kind"] == "constant":
            out[c["name"]] = np.where(np.isnan(block[:, 0]), np.nan, c["value"] if c["value"] is not None else np.nan)
        else:
            names = np.asarray([*c["categories"], np.nan] if c.get("unseen_slot") else c["categories"], dtype=object)
            filled = np.nan_to_num(block, nan=-np.inf)
            col = names[filled.argmax(1)]
            col[np.isnan(block).all(1)] = np.nan
            out[c["name"]] = col
    for c in spec["columns"]:
        name = c.get("name")
        if name in gone:
            out[name] = np.where(gone[name], np.nan, np.asarray(out[name], dtype=object if c["kind"] ==
                                 "categorical" else np.float64))
        if c.get("datetime") or (c["kind"] != "numeric" and "dtype" in c):
            out[name] = restore_type(np.asarray(out[name]), c)
        elif name in gone and c["kind"] == "numeric":
            out[name] = restore_dtype(out[name], c.get("dtype", ""))
    order = spec.get("order") or list(out)
    return pd.DataFrame({name: out[name] for name in order})


def restore_type(v: np.ndarray, c: dict):
    """Decoded values back in the column's recorded dtype: datetimes, booleans, categories, numbers
    stored as categories; anything else as text (object)."""
    dtype, missing = c.get("dtype", ""), pd.isna(v)
    if c.get("datetime"):
        ns = np.where(missing, 0, v.astype(np.float64) * DATETIME_UNITS[c["datetime"]])
        t = pd.Series(pd.to_datetime(np.round(ns).astype("int64"), unit="ns")).where(~missing, pd.NaT)
        if "," in dtype:  # time-zone aware, e.g. datetime64[ns, UTC]
            t = t.dt.tz_localize("UTC").dt.tz_convert(dtype.split(",", 1)[1].strip(" ]"))
        return t.to_numpy() if "," not in dtype else t.array
    if c["kind"] == "constant" and dtype:
        return restore_dtype(v.astype(np.float64), dtype)
    if dtype == "bool" or dtype == "boolean":
        b = pd.array([None if m else str(a) == "True" for a, m in zip(v, missing)], dtype="boolean")
        return b.to_numpy(dtype=bool) if not missing.any() else b
    if dtype == "category":
        return pd.Categorical(v, categories=c.get("categories"))
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        kind = "O"
    if kind in "iuf":
        return restore_dtype(np.array([np.nan if m else float(a) for a, m in zip(v, missing)]), dtype)
    return v.astype(object)


def restore_dtype(v: np.ndarray, dtype: str):
    """Whole numbers back in the column's integer dtype (pandas' nullable Int64 when some are missing)."""
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        return v
    if kind == "f":
        return v.astype(dtype)
    if kind not in "iu":
        return v
    if np.isnan(v).any():
        return pd.array([None if np.isnan(a) else int(a) for a in v], dtype="Int64")
    return v.astype(dtype)


def feature_names(spec: dict) -> list[str]:
    """One name per modelled column, in the order of the likelihood's per-feature terms."""
    return [c["name"] for c in spec["columns"]]


def value_names(spec: dict) -> list[str]:
    """One name per model-array value: ``age`` for numbers, ``colour=red`` for one-hot slots."""
    names = []
    for c in spec["columns"]:
        if c["kind"] == "numeric":
            names.append(c["name"])
        elif c["kind"] == "missing":
            names += [f"{c['of']}=observed", f"{c['of']}=missing"]
        elif c["kind"] == "constant":
            names += [f"{c['name']}=={c['value']}", f"{c['name']}!={c['value']}"]
        else:
            names += [f"{c['name']}={v}" for v in c["categories"]] + (["<unseen>"] if c.get("unseen_slot") else [])
    return names


def has_density(c: dict) -> bool:
    """A column whose likelihood term is a density in standardised units (the Jacobian applies)."""
    return c["kind"] == "numeric" and not is_discrete(c)


def log_scales(spec: dict) -> np.ndarray:
    """log std per modelled column (0 for categorical, constant and discrete columns), in feature order."""
    return np.array([math.log(c["std"]) if has_density(c) else 0.0 for c in spec["columns"]])


def log_jacobian_rows(x: np.ndarray, spec: dict | None) -> np.ndarray:
    """(N,) log |d x_model / d x_original| per row in nats (observed numeric cells only): add it to a
    model-space log-density to get the density in the original units."""
    if not spec:
        return np.zeros(len(x))
    at, i = [], 0
    for c in spec["columns"]:
        if has_density(c):
            at.append(i)
        i += block_size(c)
    scales = np.array([c["std"] for c in spec["columns"] if has_density(c)])
    seen = np.isfinite(np.asarray(x)[:, at]) if at else np.zeros((len(x), 0), bool)
    return -(seen * np.log(scales)).sum(1)


def log_jacobian(spec: dict | None) -> float:
    """The same for a fully observed row."""
    if not spec:
        return 0.0
    return -sum(math.log(c["std"]) for c in spec["columns"] if has_density(c))
