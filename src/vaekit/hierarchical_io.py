"""Save and load a ``HierarchicalVAE`` built by ``HierarchicalVAE.mlp``: a directory with
``config.json`` (the architecture and a format tag) and ``model.safetensors`` (weights); never pickle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vaekit.hierarchical import HierarchicalVAE
from vaekit.io import load_weights, read_config, write_model_dir

FORMAT = "vaekit-hierarchical"
FORMAT_VERSION = 1
CONFIG, WEIGHTS = "config.json", "model.safetensors"


def save_hierarchical(model: HierarchicalVAE, path: str | Path, *, extra: dict[str, Any] | None = None,
                      overwrite: bool = False) -> Path:
    """Write ``path/config.json`` and ``path/model.safetensors`` atomically (temp file + rename)."""
    spec = getattr(model, "spec", None)
    if spec is None:
        raise ValueError("Only models built by HierarchicalVAE.mlp(...) can be saved; build the model with it.")
    path = Path(path)
    if not overwrite and (path / WEIGHTS).exists():
        raise ValueError(f"{path} already holds a saved model; pass overwrite=True or choose another directory.")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": spec, "extra": extra or {}}
    return write_model_dir(path, tensors, meta)


def load_hierarchical(path: str | Path, *, device: str = "cpu") -> tuple[HierarchicalVAE, dict[str, Any]]:
    """Rebuild the model from ``config.json`` and load its weights. Returns (model in eval mode, extra)."""
    meta = read_config(path, fmt=FORMAT, version=FORMAT_VERSION, kind="hierarchical model",
                       other="; load it with vaekit.io.load_model")
    spec = dict(meta["model"])
    model = HierarchicalVAE.mlp(spec.pop("in_features"), **{**spec, "hidden": tuple(spec["hidden"])})
    load_weights(model, path)
    return model.to(device).eval(), meta.get("extra", {})
