"""``vaekit.load(path)``: open any directory vaekit writes and get back what was saved.

- an estimator's directory (``VAE.save``, ``AnomalyDetector.save``, ...) -> that fitted estimator;
- a training run (``vaekit train``) -> a ``Run`` (model, resolved config, data metadata, path);
- any other saved model (``vaekit.io.save_model``, M1 of M1+M2, format-1 hierarchical) -> the model.

``as_model(obj)`` accepts a fitted estimator, a torch model or a saved directory alike and returns the
torch model: every function that takes a model (compression, export, evaluation) calls it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from vaekit.io import load_model, read_config

ESTIMATORS = {  # the name an estimator saves under -> where its class lives
    "VAE": "vaekit.estimators.vae",
    "AnomalyDetector": "vaekit.apps.anomaly.detector",
    "TimeSeriesDetector": "vaekit.apps.anomaly.timeseries",
    "SemiSupervisedClassifier": "vaekit.apps.semisupervised.estimator",
    "Recommender": "vaekit.apps.recommend",
    "MoleculeVAE": "vaekit.apps.molecules",
    "TabularSynthesizer": "vaekit.apps.tables",
}


@dataclass
class Run:
    model: nn.Module
    config: object  # vaekit.run.RunConfig
    meta: object  # vaekit.data.DataMeta
    path: Path


def estimator_class(name: str):
    if name not in ESTIMATORS:
        raise ValueError(f"This directory holds a {name!r}, which this vaekit does not know; upgrade vaekit.")
    return getattr(importlib.import_module(ESTIMATORS[name]), name)


def load(path: str | Path, *, device: str = "cpu"):
    """What was saved in ``path``: a fitted estimator, a ``Run``, or a torch model."""
    path = Path(path)
    meta = read_config(path)
    extra = meta.get("extra", {})
    if extra.get("estimator"):
        return estimator_class(extra["estimator"]).load(path, device=device)
    if meta.get("kind") == "run" or "run" in extra:
        from vaekit.run import load_run

        model, cfg, data_meta = load_run(path, device=device)
        return Run(model, cfg, data_meta, path)
    return load_model(path, device=device)[0]


def as_model(obj, *, device: str = "cpu") -> nn.Module:
    """The torch model of a fitted estimator, a ``Run``, a torch model, or a saved directory."""
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, Run):
        return obj.model
    if isinstance(obj, (str, Path)):
        return as_model(load(obj, device=device))
    model = getattr(obj, "model_", None)
    if isinstance(model, nn.Module):
        return model
    if hasattr(obj, "get_params"):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(f"This {type(obj).__name__} is not fitted yet; call fit(X) before using it.")
    raise ValueError(f"Expected a vaekit model, a fitted estimator or a saved model directory; got {type(obj).__name__}.")
