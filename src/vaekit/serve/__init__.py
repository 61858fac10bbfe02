"""Use a trained model elsewhere: ONNX export with a model card (``export``), an HTTP scoring service
(``create_app``) and a latent explorer page served by it. Importing this package loads no web or ONNX
library; those load on first use."""

from __future__ import annotations

from vaekit.lazy import lazy_names

NAMES = {"export": "vaekit.serve.export", "create_app": "vaekit.serve.service", "open_model": "vaekit.serve.loading",
         "Served": "vaekit.serve.served"}


__getattr__ = lazy_names(__name__, NAMES)


__all__ = list(NAMES)
