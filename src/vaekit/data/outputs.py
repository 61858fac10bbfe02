"""Model outputs back to the user's units, and the files the command line reads and writes.

Tables come back with their original columns (un-standardised numbers, categories by name) as
CSV or Parquet; images as PNG grids (``vaekit.plots``) or NPY arrays (N, C, H, W) in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vaekit.data import tabular
from vaekit.data.dataset import DataMeta
from vaekit.io import atomic_write

TABLE_SUFFIXES = (".csv", ".parquet")
ARRAY_SUFFIXES = (".npy", ".csv", ".parquet")


def to_user(x: np.ndarray, meta: DataMeta) -> np.ndarray | pd.DataFrame:
    """Model-space rows to the data's own form: a table (original units) or an array."""
    x = np.asarray(x, dtype=np.float32).reshape(len(x), *meta.shape)
    if meta.kind == "table":
        return tabular.decode_table(x, meta.table)
    return x


def as_frame(x: np.ndarray | pd.DataFrame, names: list[str] | None = None) -> pd.DataFrame:
    if isinstance(x, pd.DataFrame):
        return x
    flat = np.asarray(x).reshape(len(x), -1)
    names = names if names and len(names) == flat.shape[1] else [f"x{i}" for i in range(flat.shape[1])]
    return pd.DataFrame(flat, columns=names)


def check_suffix(path: str | Path, allowed: tuple[str, ...], what: str) -> Path:
    path = Path(path)
    if path.suffix.lower() not in allowed:
        raise ValueError(f"Cannot write {what} to {path.name!r}; use a file ending in {', '.join(allowed)}.")
    return path


def write_array(path: str | Path, x: np.ndarray | pd.DataFrame, *, names: list[str] | None = None) -> Path:
    """Write an array or table by extension (.npy, .csv, .parquet), atomically."""
    path = check_suffix(path, ARRAY_SUFFIXES, "data")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".npy" and isinstance(x, pd.DataFrame):
        if not all(tabular.is_numeric(x[c]) for c in x.columns):
            raise ValueError(f"The output has text columns; write {path.stem}.csv or .parquet instead of .npy.")
        x = x.to_numpy(np.float32)
    if suffix == ".npy":
        return atomic_write(path, lambda p: np.save(p, np.asarray(x)))
    frame = as_frame(x, names)
    if suffix == ".csv":
        return atomic_write(path, lambda p: frame.to_csv(p, index=False))
    return atomic_write(path, lambda p: frame.to_parquet(p, index=False))


def read_latents(path: str | Path, latent_dim: int) -> np.ndarray:
    """Latent vectors (N, latent_dim) from .npy, .csv or .parquet (columns z0.. or all numeric ones)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Latents file {str(path)!r} does not exist; write one with vaekit encode.")
    suffix = path.suffix.lower()
    if suffix not in (".npy", *TABLE_SUFFIXES):
        raise ValueError(f"Cannot read latents from {path.name!r}; use .npy, .csv or .parquet.")
    try:
        if suffix == ".npy":
            z = np.load(path, allow_pickle=False)
        else:
            df = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
            zcols = [f"z{i}" for i in range(latent_dim)]
            df = df[zcols] if all(c in df.columns for c in zcols) else df.select_dtypes("number")
            z = df.to_numpy()
        z = np.asarray(z, dtype=np.float32)
    except (OSError, EOFError, ValueError, TypeError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as e:
        raise ValueError(f"Cannot read latents from {path.name} ({type(e).__name__}: {e}); write them with "
                         "vaekit encode.") from None
    if z.ndim == 1 and z.size == latent_dim:
        z = z[None]
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"{path.name} holds latents of shape {z.shape}; the model needs (N, {latent_dim}).")
    if not np.isfinite(z).all():
        raise ValueError(f"{path.name} contains NaN or infinite latents; remove them.")
    return z
