"""File readers: one function per format, each returning a ``Raw`` record (array or table + labels).

Readers do no scaling or splitting; ``vaekit.data.load`` does that for every format alike.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
FORMATS = ("npy", "npz", "csv", "parquet", "idx", "mat", "images")
DEFAULT_KEYS = ("x", "X", "train", "data")
LABEL_KEYS = ("y", "labels", "label", "targets")
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class Raw:
    x: np.ndarray | pd.DataFrame  # (N, ...) array, or a table of feature columns
    y: np.ndarray | None = None  # (N,) raw labels of any type
    class_names: list[str] | None = None  # label index -> name, when the reader knows them


def detect_format(path: Path, format: str = "auto") -> str:
    if format != "auto":
        if format not in FORMATS:
            raise ValueError(f"Unknown data format {format!r}; choose one of {', '.join(FORMATS)} or 'auto'.")
        return format
    if path.is_dir():
        return "images"
    name = path.name.lower().removesuffix(".gz")
    suffix = Path(name).suffix
    if suffix in (".npy", ".npz", ".csv", ".parquet", ".mat"):
        return suffix[1:]
    if suffix == ".idx" or "-idx" in name or "ubyte" in name:
        return "idx"
    raise ValueError(f"Unknown data format for {path.name!r}; use .npy, .npz, .csv, .parquet, .mat, "
                     "an IDX file, a folder of images, or set data.format.")


def read_source(path: Path, *, format: str = "auto", key: str = "", label: str = "",
                image_size: tuple[int, ...] = (), grayscale: bool = False) -> Raw:
    """Read one data file (or image folder) into a ``Raw`` record."""
    if not path.exists():
        raise FileNotFoundError(f"Data file {str(path)!r} does not exist; check the path or use the "
                                "built-in 'digits'.")
    fmt = detect_format(path, format)
    try:
        return read_format(path, fmt, key=key, label=label, image_size=image_size, grayscale=grayscale)
    except pd.errors.EmptyDataError:  # a ValueError whose text ("No columns to parse") does not name the file
        raise ValueError(f"{path.name!r} is empty; pass a {fmt} file with a header row and at least one data "
                         "row.") from None
    except (ValueError, FileNotFoundError):
        raise  # already one sentence naming the problem
    except Exception as e:  # a parser's own error means the file is not what it claims
        raise ValueError(f"Cannot read {path.name!r} as {fmt} ({type(e).__name__}: {e}); check that the file "
                         "is complete and in that format, or set data.format.") from None


def read_format(path: Path, fmt: str, *, key: str, label: str, image_size: tuple[int, ...],
                grayscale: bool) -> Raw:
    if fmt == "images":
        return read_image_folder(path, image_size=image_size, grayscale=grayscale)
    if fmt in ("csv", "parquet"):
        df = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
        if label and label not in df.columns:
            raise ValueError(f"Label column {label!r} is not in {path.name}; its columns are "
                             f"{list(df.columns)[:8]}.")
        y = df.pop(label).to_numpy() if label else None
        return Raw(df, y)
    if fmt == "npy":
        return Raw(np.load(path, allow_pickle=False), read_labels(label, path))
    if fmt == "idx":
        return Raw(read_idx(path), read_labels(label, path))
    arrays = dict(np.load(path, allow_pickle=False)) if fmt == "npz" else read_mat(path)
    return Raw(pick(arrays, key, path, DEFAULT_KEYS, what="array"),
               pick(arrays, label, path, LABEL_KEYS, what="labels", required=False)
               if not label or label in arrays else read_labels(label, path))


def pick(arrays: dict, key: str, path: Path, defaults: tuple[str, ...], *, what: str,
         required: bool = True) -> np.ndarray | None:
    """The array named ``key``, else the first default name present (else the first array)."""
    if key:
        if key not in arrays:
            raise ValueError(f"{path.name} has no {what} named {key!r}; it has {sorted(arrays)[:8]}.")
        return np.asarray(arrays[key])
    found = next((k for k in defaults if k in arrays), None)
    if found is None and required:
        if not arrays:
            raise ValueError(f"{path.name} holds no arrays.")
        found = next(iter(arrays))
    return None if found is None else np.asarray(arrays[found])


def read_labels(label: str, data_path: Path) -> np.ndarray | None:
    """Labels from a separate file (IDX or .npy), given as a path relative to the data or absolute."""
    if not label:
        return None
    path = Path(label) if Path(label).exists() else data_path.parent / label
    if not path.exists():
        raise FileNotFoundError(f"Label file {label!r} does not exist; set data.label to a labels file.")
    return read_idx(path) if detect_format(path) == "idx" else np.load(path, allow_pickle=False)


def read_idx(path: Path) -> np.ndarray:
    """An MNIST-style IDX file (gzipped or not): 2 zero bytes, a type code, ndim, then big-endian
    uint32 sizes and the data (http://yann.lecun.com/exdb/mnist/)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_TYPES:
        raise ValueError(f"{path.name} is not an IDX file (bad header); check the file or set data.format.")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    size = int(np.prod(shape)) if shape else 0
    if len(raw) - 4 - 4 * ndim != size * dtype.itemsize:
        raise ValueError(f"{path.name} is truncated: its header says {shape} but the size does not match.")
    return np.frombuffer(raw, dtype, count=size, offset=4 + 4 * ndim).reshape(shape).astype(dtype.newbyteorder("="))


def read_mat(path: Path) -> dict[str, np.ndarray]:
    from scipy.io import loadmat

    try:
        return {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    except (ValueError, NotImplementedError) as e:
        raise ValueError(f"{path.name} could not be read as a MATLAB file ({e}); save it with "
                         "format 5 (scipy) or convert it to .npz.") from None


def read_image_folder(path: Path, *, image_size: tuple[int, ...] = (), grayscale: bool = False) -> Raw:
    """PNG/JPEG files in ``path``; files in sub-folders are labelled by the sub-folder's name."""
    from PIL import Image

    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"The folder {str(path)!r} holds no PNG or JPEG images.")
    labelled = all(p.parent != path for p in files)
    images = [Image.open(p) for p in files]
    gray = grayscale or all(im.mode in ("1", "L", "LA", "I", "I;16") for im in images)
    size = tuple(image_size)
    if size and len(size) != 2:
        raise ValueError(f"data.image_size must be [height, width], got {list(size)}.")
    sizes = {im.size for im in images}
    if not size and len(sizes) > 1:
        raise ValueError(f"The images have {len(sizes)} different sizes; set data.image_size = [H, W] "
                         "to resize them.")
    arrays = []
    for im in images:
        im = im.convert("L" if gray else "RGB")
        if size:
            im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
        arrays.append(a[None] if gray else a.transpose(2, 0, 1))  # (C, H, W)
    y = np.asarray([p.relative_to(path).parts[0] for p in files]) if labelled else None
    return Raw(np.stack(arrays), y)
