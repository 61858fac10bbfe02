"""Use a trained model elsewhere: ONNX export with a model card (``export``), an HTTP scoring service
(``create_app``) and a latent explorer page served by it. Importing this package loads no web or ONNX
library; those load on first use."""

from __future__ import annotations

from importlib import import_module

NAMES = {"export": "vaekit.serve.export", "create_app": "vaekit.serve.service", "open_model": "vaekit.serve.loading",
         "Served": "vaekit.serve.served"}


def __getattr__(name: str):
    if name in NAMES:
        return getattr(import_module(NAMES[name]), name)
    raise AttributeError(f"module 'vaekit.serve' has no attribute {name!r}")


__all__ = list(NAMES)
