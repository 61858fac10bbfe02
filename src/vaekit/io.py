"""Save and load models as a directory: ``config.json`` (format, version, model family, everything
needed to rebuild, a checksum of the weights) and ``model.safetensors``. Loading rebuilds from the
config and never unpickles.

Every directory vaekit writes (a training run, an estimator's ``save``, a hierarchical model, M2, the
anomaly detectors) is opened by ``load_model``. Directories written by the previous release (format 1,
and the separate "vaekit-hierarchical" format) are upgraded on load (``vaekit.io_upgrade``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file

from vaekit.atomic import atomic_write, atomic_write_text
from vaekit.config import ModelConfig, build_model, from_dict, to_dict
from vaekit.io_config import CONFIG, FORMAT, FORMAT_VERSION, WEIGHTS, read_config, sha256
from vaekit.io_upgrade import upgrade_weights


def write_model_dir(path: Path, tensors: dict, meta: dict) -> Path:
    """``path/model.safetensors`` then ``path/config.json`` (with the weights' checksum), each atomic."""
    path.mkdir(parents=True, exist_ok=True)
    atomic_write(path / WEIGHTS, lambda p: save_file(tensors, str(p), metadata={"format": meta["format"]}))
    meta = {**meta, "weights_sha256": sha256((path / WEIGHTS).read_bytes())}
    atomic_write_text(path / CONFIG, json.dumps(meta, indent=2))
    return path


def save_model(model: torch.nn.Module, config: ModelConfig, path: str | Path, *,
               extra: dict[str, Any] | None = None, kind: str = "model", overwrite: bool = True) -> Path:
    """Write ``path/config.json`` and ``path/model.safetensors`` atomically. ``kind`` says what the
    directory holds ("model", "run" or an estimator's name); ``extra`` is any JSON (preprocessing,
    training summary, fitted state) stored beside the model config."""
    path = Path(path)
    if not overwrite and (path / CONFIG).exists():
        raise ValueError(f"{path} already holds a saved model; pass overwrite=True or choose another directory.")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "family": config.family, "kind": kind,
            "model": to_dict(config), "extra": extra or {}}
    return write_model_dir(path, tensors, meta)


def read_weights(path: Path, meta: dict) -> dict[str, torch.Tensor]:
    try:
        data = (path / WEIGHTS).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} has no {WEIGHTS}; the saved model is incomplete.") from None
    expected = meta.get("weights_sha256")
    if expected is not None and sha256(data) != expected:
        raise ValueError(f"{path / WEIGHTS} is damaged: its checksum does not match the one in {CONFIG}; "
                         "save the model again.")
    try:
        state = load(data)
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path / WEIGHTS} is damaged or truncated ({e}); save the model again.") from None
    return upgrade_weights(meta, state)


def load_model(path: str | Path, *, device: str | torch.device = "cpu"):
    """Rebuild the model from ``config.json`` and load its weights. Returns (model in eval mode,
    config, extra); works on every directory vaekit writes."""
    path = Path(path)
    meta = read_config(path)
    config = from_dict(ModelConfig, meta["model"], where="model.")
    model = build_model(config)
    load_state(model, read_weights(path, meta), path)
    return model.to(device).eval(), config, meta.get("extra", {})


def load_state(model: torch.nn.Module, state: dict, path: Path) -> torch.nn.Module:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else "mismatch"
        raise ValueError(f"{path / WEIGHTS} does not match {path / CONFIG} ({first}).") from None
    return model.eval()


def load_weights(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load ``path/model.safetensors`` into a model built from ``path/config.json``."""
    path = Path(path)
    return load_state(model, read_weights(path, read_config(path)), path)


__all__ = ["CONFIG", "FORMAT", "FORMAT_VERSION", "WEIGHTS", "atomic_write", "load_model", "load_weights",
           "read_config", "save_model", "write_model_dir"]
