"""``config.json`` of a saved directory, read without torch (so ``vaekit info`` starts fast): the format,
its version, the model family and everything needed to rebuild the model. Format-1 directories are
upgraded on read (``vaekit.io_upgrade``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from vaekit.io_upgrade import FORMATS_V1, upgrade

FORMAT = "vaekit-model"
FORMAT_VERSION = 2
CONFIG, WEIGHTS = "config.json", "model.safetensors"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_config(path: str | Path) -> dict[str, Any]:
    """``path/config.json`` of any saved vaekit directory, upgraded to the current format."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No saved model at {path}: that path does not exist; check it.")
    if not path.is_dir():
        raise FileNotFoundError(f"No saved model at {path}: expected a directory with {CONFIG} and {WEIGHTS}.")
    try:
        meta = json.loads((path / CONFIG).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} has no {CONFIG}; it is not a saved vaekit model.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path / CONFIG} is damaged (not valid JSON: {e}); save the model again.") from None
    if not isinstance(meta, dict) or meta.get("format") not in (FORMAT, *FORMATS_V1):
        raise ValueError(f"{path / CONFIG} is not a vaekit model config.")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"{path} was saved by a newer vaekit (format version {version}; this vaekit reads "
                         f"up to {FORMAT_VERSION}); upgrade vaekit.")
    return upgrade(meta)
