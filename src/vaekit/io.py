"""Save and load models as a directory: ``config.json`` (everything needed to rebuild, plus a format
version) and ``model.safetensors`` (weights). Loading rebuilds from the config and never unpickles."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vaekit.config import ModelConfig, build_model, from_dict, to_dict

FORMAT = "vaekit-model"
FORMAT_VERSION = 1
CONFIG, WEIGHTS = "config.json", "model.safetensors"


def atomic_write(path: str | Path, write) -> Path:
    """Write a file via a temporary file beside it and a rename, so a crash never leaves a half-written
    file and an old file is replaced only by a complete new one. ``write(tmp_path)`` writes the data."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")  # keeps the suffix: np.save would add one
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_model_dir(path: Path, tensors: dict, meta: dict) -> Path:
    """``path/model.safetensors`` and ``path/config.json``, each written atomically."""
    path.mkdir(parents=True, exist_ok=True)
    atomic_write(path / WEIGHTS, lambda p: save_file(tensors, str(p), metadata={"format": meta["format"]}))
    atomic_write(path / CONFIG, lambda p: p.write_text(json.dumps(meta, indent=2)))
    return path


def save_model(model: torch.nn.Module, config: ModelConfig, path: str | Path, *,
               extra: dict[str, Any] | None = None) -> Path:
    """Write ``path/config.json`` and ``path/model.safetensors`` atomically; ``extra`` is any JSON
    (preprocessing, training summary) stored beside the model config."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": to_dict(config), "extra": extra or {}}
    return write_model_dir(Path(path), tensors, meta)


def read_config(path: str | Path, *, fmt: str = FORMAT, version: int = FORMAT_VERSION,
                kind: str = "model", other: str = "") -> dict[str, Any]:
    """``path/config.json`` of a saved model directory, checked for format ``fmt`` up to ``version``;
    ``kind`` names the model in errors and ``other`` says how to load a different format."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"No saved {kind} at {path}: expected a directory with {CONFIG} and {WEIGHTS}.")
    try:
        meta = json.loads((path / CONFIG).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} has no {CONFIG}; it is not a saved vaekit {kind}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path / CONFIG} is damaged (not valid JSON: {e}); save the model again.") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise ValueError(f"{path / CONFIG} is not a vaekit {kind} config{other}.")
    if meta.get("format_version", 0) > version:
        raise ValueError(f"{path} was saved by a newer vaekit (format {meta['format_version']}); upgrade vaekit.")
    return meta


def load_model(path: str | Path, *, device: str | torch.device = "cpu"):
    """Rebuild the model from ``config.json`` and load its weights. Returns (model, config, extra)."""
    path = Path(path)
    meta = read_config(path)
    config = from_dict(ModelConfig, meta["model"], where="model.")
    model = load_weights(build_model(config), path)
    return model.to(device).eval(), config, meta.get("extra", {})


def load_weights(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load ``path/model.safetensors`` into a model rebuilt from ``path/config.json`` (never unpickled);
    a missing, damaged or mismatched file is a clear error."""
    path = Path(path)
    try:
        state = load_file(str(path / WEIGHTS), device="cpu")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} has no {WEIGHTS}; the saved model is incomplete.") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path / WEIGHTS} is damaged or truncated ({e}); save the model again.") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else "mismatch"
        raise ValueError(f"{path / WEIGHTS} does not match {path / CONFIG} ({first}).") from None
    return model.eval()
