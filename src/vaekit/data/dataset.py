"""``load(source, config) -> Dataset``: one entry point for the library, the CLI and the benchmarks.

Every format goes through the same steps: read, label-encode, split (seeded), preprocess (pixels to
[0, 1]; tables standardised and one-hot encoded with statistics from the training rows), optional
binarisation, a NaN check. ``DataMeta`` records what is needed to map model outputs back.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vaekit.data import tabular
from vaekit.data.readers import Raw, read_source

SPLITS = ("train", "val", "test", "all")


@dataclass
class DataConfig:
    source: str = "digits"  # a built-in name ("digits") or a path: file or image folder
    format: str = "auto"  # auto (from the extension), npy, npz, csv, parquet, idx, mat, images
    key: str = ""  # npz key or .mat variable; "" = x, X, train, data, else the first array
    # npz keys / .mat variables holding ready-made validation and test sets (e.g. "valid", "test" of the
    # static binarized MNIST file); when given, the split fractions are not used for that split
    val_key: str = ""
    test_key: str = ""
    label: str = ""  # csv/parquet column, npz/mat key, or a labels file (.npy or IDX)
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0  # the split and the binarisation draw
    binarize: str = "none"  # "none", "threshold" (x > 0.5) or "sample" (one seeded Bernoulli draw)
    image_size: tuple[int, ...] = ()  # (H, W): resize images from a folder; () = keep their size
    grayscale: bool = False  # image folders: convert to one channel
    standardize: bool = True  # tables: numeric columns to zero mean, unit variance
    max_examples: int = 0  # > 0: keep only this many examples (before splitting), for quick runs
    as_images: bool = False  # flat rows of a square width (e.g. 784 = 28 x 28): read as (N, 1, H, W) images


@dataclass
class DataMeta:
    name: str
    kind: str  # "image" (C, H, W), "table" (preprocessed columns) or "array" (flat values)
    shape: tuple[int, ...]  # one example as the model sees it
    feature_names: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)  # label index -> name; [] without labels
    table: dict | None = None  # tabular preprocessing spec (vaekit.data.tabular)
    image_shape: tuple[int, ...] = ()  # (C, H, W) to draw flat examples as pictures; () = not images
    binary: bool = False  # every value is 0 or 1
    scaling: str = ""  # how values were scaled on the way in, said in the run's log

    @property
    def log_jacobian(self) -> float:
        """Add to a model-space log-density (nats) of a fully observed example to get it in the data's
        original units (``log_jacobian_rows`` for rows with missing cells)."""
        return tabular.log_jacobian(self.table)

    def log_jacobian_rows(self, x) -> np.ndarray:
        """(N,) the same per example, counting only observed cells."""
        x = np.asarray(x.cpu() if hasattr(x, "cpu") else x)
        return tabular.log_jacobian_rows(x.reshape(len(x), -1), self.table) if self.table else np.zeros(len(x))

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> DataMeta:
        d = dict(d)
        d["shape"], d["image_shape"] = tuple(d["shape"]), tuple(d.get("image_shape", ()))
        return cls(**d)


@dataclass
class Dataset:
    x_train: torch.Tensor
    x_val: torch.Tensor
    x_test: torch.Tensor
    y_train: torch.Tensor | None
    y_val: torch.Tensor | None
    y_test: torch.Tensor | None
    meta: DataMeta

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x, y) of "train", "val", "test" or "all"."""
        if name not in SPLITS:
            raise ValueError(f"Unknown split {name!r}; choose one of {', '.join(SPLITS)}.")
        if name == "all":
            parts = [self.split(s) for s in ("train", "val", "test")]
            ys = [y for _, y in parts]
            return torch.cat([x for x, _ in parts]), None if ys[0] is None else torch.cat(ys)
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


def load(source: str | Path | None = None, config: DataConfig | None = None, *,
         table: dict | None = None) -> Dataset:
    """Load ``source`` (default ``config.source``) as train/val/test tensors.

    ``table``: a stored preprocessing spec to reuse (evaluating a trained model on new data)
    instead of fitting one on the training rows.
    """
    from vaekit.data.builtins import BUILTINS

    cfg = check_data_config(config or DataConfig())
    source = str(source if source is not None else cfg.source)
    if source in BUILTINS:
        raw, name = BUILTINS[source](), source
    else:
        path = Path(source).expanduser()
        raw = read_source(path, format=cfg.format, key=cfg.key, label=cfg.label,
                          image_size=tuple(cfg.image_size), grayscale=cfg.grayscale)
        name = path.stem.removesuffix(".idx") if path.suffix == ".gz" else path.stem
    given = {}  # ready-made splits: "val" / "test" -> their examples, read from the same file
    for split, key in (("val", cfg.val_key), ("test", cfg.test_key)):
        if key:
            if source in BUILTINS or cfg.label:
                raise ValueError(f"data.{split}_key needs a data file (npz or mat) without data.label; "
                                 f"leave data.{split}_key empty and use data.{split}_fraction instead.")
            given[split] = read_source(path, format=cfg.format, key=key).x
    n = len(raw.x)
    if raw.y is not None and np.ndim(raw.y) == 2 and 1 in np.shape(raw.y):  # a (1, N) or (N, 1) label array
        raw = Raw(raw.x, np.asarray(raw.y).ravel(), raw.class_names)
    if raw.y is not None and len(raw.y) != n:
        raise ValueError(f"The data has {n} examples but {len(raw.y)} labels; use labels of the same length.")
    if cfg.max_examples > 0 and n > cfg.max_examples:
        raw, n = Raw(raw.x[: cfg.max_examples], None if raw.y is None else raw.y[: cfg.max_examples],
                     raw.class_names), cfg.max_examples
    train, val, test = split_indices(n, 0.0 if "val" in given else cfg.val_fraction,
                                     0.0 if "test" in given else cfg.test_fraction, cfg.seed)
    if given:
        raw, train, val, test = with_given_splits(raw, train, val, test, given)
    y, class_names = encode_labels(raw)
    x, meta = preprocess(raw.x, train, cfg, table, name)
    if meta.kind != "table":  # tables: missing cells are NaN, masked out by the table likelihood
        check_finite(x, source)
    if cfg.binarize != "none":
        x = binarize(x, cfg.binarize, cfg.seed)
    meta.binary = meta.kind != "table" and bool(np.isin(x, (0.0, 1.0)).all())
    meta.class_names = class_names
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = None if y is None else torch.from_numpy(y)
    parts = [(xt[i], None if yt is None else yt[i]) for i in map(torch.from_numpy, (train, val, test))]
    return Dataset(parts[0][0], parts[1][0], parts[2][0], parts[0][1], parts[1][1], parts[2][1], meta)


def with_given_splits(raw: Raw, train, val, test, given: dict):
    """Append ready-made validation / test examples after the file's main array and point the split
    indices at them; the main array keeps its seeded partition for a split not given."""
    parts, shapes = [np.asarray(raw.x)], {np.shape(raw.x)[1:]}
    index = {"val": val, "test": test}
    start = len(parts[0])
    for split, x in given.items():
        x = np.asarray(x)
        shapes.add(x.shape[1:])
        index[split] = np.arange(start, start + len(x))
        parts.append(x)
        start += len(x)
    if len(shapes) > 1:
        raise ValueError(f"The ready-made splits have other example shapes than the training array ({sorted(shapes)}); "
                         "use arrays of one shape.")
    return Raw(np.concatenate(parts)), train, index["val"], index["test"]


def check_data_config(cfg: DataConfig) -> DataConfig:
    """Every data setting's type and range; one sentence names a bad value."""
    from vaekit import checks as c

    c.choice("data.binarize", cfg.binarize, ("none", "threshold", "sample"))
    c.choice("data.format", cfg.format, ("auto", "npy", "npz", "csv", "parquet", "idx", "mat", "images"))
    for name in ("key", "label", "val_key", "test_key"):
        if not isinstance(getattr(cfg, name), str):
            raise ValueError(f"data.{name} must be text, got {getattr(cfg, name)!r}.")
    size = cfg.image_size if isinstance(cfg.image_size, (list, tuple)) else (cfg.image_size,)
    return dataclasses.replace(
        cfg, source=str(cfg.source),
        val_fraction=c.real("data.val_fraction", cfg.val_fraction, low=0, high=1, high_open=True),
        test_fraction=c.real("data.test_fraction", cfg.test_fraction, low=0, high=1, high_open=True),
        seed=c.integer("data.seed", cfg.seed, low=0),
        image_size=tuple(c.integer(f"data.image_size[{i}]", v, low=1) for i, v in enumerate(size)),
        grayscale=c.boolean("data.grayscale", cfg.grayscale), standardize=c.boolean("data.standardize", cfg.standardize),
        max_examples=c.integer("data.max_examples", cfg.max_examples, low=0),
        as_images=c.boolean("data.as_images", cfg.as_images))


def choose_likelihood(*, binary: bool, table: bool) -> tuple[str, str]:
    """The "auto" likelihood rule, the one place it is written: a table gets the mixed-type table
    likelihood, 0/1 data Bernoulli, anything else a Gaussian with a learned per-feature scale.
    Returns (name, reason)."""
    if table:
        return "table", "a table"
    if binary:
        return "bernoulli", "every value is 0 or 1"
    return "gaussian", "real-valued data"


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int):
    """A seeded random partition into train, validation and test indices."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError("data.val_fraction and data.test_fraction must be in [0, 1) with a sum below 1.")
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    if n - n_val - n_test < 1:
        raise ValueError(f"The data has only {n} example(s); use more data or smaller split fractions.")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val + n_test :]), np.sort(perm[:n_val]), np.sort(perm[n_val : n_val + n_test])


def encode_labels(raw: Raw) -> tuple[np.ndarray | None, list[str]]:
    """Labels as integer codes 0..K-1 (sorted values) plus their names."""
    if raw.y is None:
        return None, []
    y = np.asarray(raw.y).reshape(len(raw.y), -1)
    if y.shape[1] != 1:
        raise ValueError(f"Labels must be one value per example, got shape {np.asarray(raw.y).shape}.")
    values, codes = np.unique(y[:, 0], return_inverse=True)
    names = raw.class_names or [str(v.item() if hasattr(v, "item") else v) for v in values]
    return codes.astype(np.int64), names


def preprocess(x, train: np.ndarray, cfg: DataConfig, table: dict | None, name: str):
    """Model-space float array and its metadata: images to (N, C, H, W) in [0, 1], tables encoded."""
    if isinstance(x, pd.DataFrame) or (np.ndim(x) == 2 and not pixel_like(np.asarray(x))):
        df = x if isinstance(x, pd.DataFrame) else pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
        spec = table or tabular.fit_table(df.iloc[train], standardize=cfg.standardize, name=name)
        out = tabular.encode_table(df, spec, name=name, allow_missing=spec.get("version", 1) >= 2)
        return out, DataMeta(name, "table", out.shape[1:], tabular.feature_names(spec), table=spec)
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"The array has dtype {x.dtype}; vaekit needs numbers.")
    if x.ndim < 2:
        raise ValueError(f"The array has shape {x.shape}; expected (N, features) or images (N, H, W) "
                         "or (N, C, H, W).")
    scaling = pixel_scale(x)[1]
    x = scale_pixels(x)
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        image_shape = (1, side, side) if side * side == x.shape[1] and side >= 4 else ()
        if cfg.as_images and not image_shape:
            raise ValueError(f"data.as_images reads flat rows of a square width (e.g. 784 = 28 x 28) as images; "
                             f"these rows have {x.shape[1]} values. Leave data.as_images off for this data.")
        if not cfg.as_images:
            names = [f"x{i}" for i in range(x.shape[1])]
            return x, DataMeta(name, "array", x.shape[1:], names, image_shape=image_shape, scaling=scaling)
        x = x.reshape(len(x), *image_shape)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)  # channels last -> (N, C, H, W)
    elif x.ndim > 4:
        raise ValueError(f"The array has shape {x.shape}; images must be (N, H, W) or (N, C, H, W).")
    return x, DataMeta(name, "image", x.shape[1:], image_shape=x.shape[1:], scaling=scaling)


def pixel_like(x: np.ndarray) -> bool:
    """2-D data that holds pixels rather than table columns: uint8, numbers already in [0, 1], or
    non-negative integers up to 255 in a square number of columns (flattened images)."""
    if x.dtype == np.uint8 or (x.dtype.kind in "biuf" and x.size > 0 and np.nanmin(x) >= 0 and np.nanmax(x) <= 1):
        return True
    side = math.isqrt(x.shape[1]) if x.ndim == 2 else 0
    return side * side == x.shape[1] and side >= 4 and pixel_scale(x)[0] > 1.0


LEVELS_MAX = 16  # integer data with at most this many levels above 0 is scaled by its own range


def pixel_scale(x: np.ndarray) -> tuple[float, str]:
    """(divisor, sentence) for non-negative integer data: 0/1 stays as it is (Bernoulli data, whatever
    its dtype); values up to 16 are levels scaled by their own maximum (e.g. 0..16 -> [0, 1]); larger
    values up to 255 look like 8-bit pixels and are divided by 255; anything else is kept (1.0)."""
    finite = x[np.isfinite(x)] if x.dtype.kind == "f" else x.ravel()
    if not finite.size or finite.min() < 0 or not (finite == np.round(finite)).all():
        return 1.0, ""
    top = float(finite.max())
    if top <= 1:
        return 1.0, "every value is 0 or 1: kept as it is (binary data)"
    if top <= LEVELS_MAX:
        return top, f"integer levels 0..{top:g}: divided by {top:g} to [0, 1]"
    if top <= 255:
        return 255.0, f"integer values up to {top:g} look like 8-bit pixels: divided by 255 to [0, 1]"
    return 1.0, ""


def scale_pixels(x: np.ndarray) -> np.ndarray:
    """Non-negative integer data to [0, 1] by ``pixel_scale``'s rule; other values are kept."""
    divisor, _ = pixel_scale(x)
    x = x.astype(np.float32)
    return x / divisor if divisor != 1.0 else x


def binarize(x: np.ndarray, how: str, seed: int) -> np.ndarray:
    if how == "threshold":
        return (x > 0.5).astype(np.float32)
    if how == "sample":  # one seeded draw, fixed for the whole run (not re-drawn every epoch)
        if x.min() < 0 or x.max() > 1:
            raise ValueError("data.binarize = 'sample' needs values in [0, 1]; use 'threshold'.")
        return (np.random.default_rng(seed).random(x.shape) < x).astype(np.float32)
    raise ValueError(f"Unknown data.binarize {how!r}; choose 'none', 'threshold' or 'sample'.")


def check_finite(x: np.ndarray, source: str) -> None:
    bad = ~np.isfinite(x.reshape(len(x), -1))
    if bad.any():
        rows = int(bad.any(1).sum())
        raise ValueError(f"The data {source!r} contains NaN or infinite values in {rows} example(s); "
                         "remove or impute them first.")
