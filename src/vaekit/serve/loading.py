"""``open_model(path) -> Served`` and ``served_from(obj) -> Served``: any saved model or fitted estimator,
ready for the service, the explorer and the exporter.

``vaekit.load`` opens the directory (a ``vaekit train`` run, the ``vaekit.VAE`` front door, an
``AnomalyDetector``, the semi-supervised classifier (M2 or M1+M2), a ``Recommender``, a ``MoleculeVAE``, a bare
``vaekit.io.save_model`` model); this
module only says, for each kind, how user rows map to the model and back. A new kind needs a row
description (``RowSpec``) and the two maps.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import torch

from vaekit.serve.detector import from_detector
from vaekit.serve.molecules import from_molecules
from vaekit.serve.recommender import from_recommender
from vaekit.serve.rows import RowSpec, to_json
from vaekit.serve.semisupervised import from_m1m2
from vaekit.serve.served import Served
from vaekit.serve.tables import HOW_TABLE, table_maps, table_rows, table_shift

MAX_EXAMPLES = 1000  # data points on the explorer's map
UNSUPPORTED = ("TimeSeriesDetector", "TabularSynthesizer")


def open_model(path: str | Path, *, device: str = "cpu") -> Served:
    """The model saved in ``path``, with its preprocessing, labels and metrics, in eval mode."""
    from vaekit.loading import load

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"No saved model at {path}: expected a directory made by vaekit train or an "
                                "estimator's save.")
    obj = load(path, device=device)
    if isinstance(obj, torch.nn.Module):  # a bare saved model: its config says what it is conditioned on
        from vaekit.io import load_model

        return from_saved_model(*load_model(path, device=device)[:2])
    return served_from(obj)


def served_from(obj) -> Served:
    """A ``Run``, a fitted estimator or a vaekit model as a ``Served``."""
    from vaekit.loading import Run

    name = type(obj).__name__
    if isinstance(obj, Run):
        served = from_run(obj)
    elif name == "AnomalyDetector":
        served = from_detector(obj)
    elif name in ("VAE", "SemiSupervisedClassifier"):
        served = from_front_door(obj, name)
    elif name == "Recommender":
        served = from_recommender(obj)
    elif name == "MoleculeVAE":
        served = from_molecules(obj)
    elif name in UNSUPPORTED:
        raise ValueError(f"vaekit serve and export cannot open a {name} yet; serve a run, a vaekit.VAE, an "
                         "AnomalyDetector, a SemiSupervisedClassifier, a Recommender or a MoleculeVAE.")
    elif isinstance(obj, torch.nn.Module) and hasattr(obj, "decode"):
        served = from_saved_model(obj, None)
    else:
        raise ValueError(f"Cannot serve or export a {name}; pass a saved model directory, a fitted vaekit "
                         "estimator or a vaekit model.")
    served.model.eval()
    return served


# -- rows (tables: vaekit.serve.tables) ----------------------------------------------------------
def picture_of(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(C, H, W) to draw a row as a picture: images as they are, square vectors of >= 16 values."""
    if len(shape) == 3:
        return shape
    if len(shape) == 2:
        return (1, *shape)
    side = math.isqrt(math.prod(shape))
    return (1, side, side) if side * side == math.prod(shape) and side >= 4 else ()


# -- kinds -----------------------------------------------------------------------------------------
def from_run(run) -> Served:
    from vaekit.run import EVALUATION, load_for_run

    model, cfg, meta, path = run.model, run.config, run.meta, Path(run.path)
    if meta.table:
        rows = table_rows(meta.table)
        to_model, to_user, shift = table_maps(meta.table)
    else:
        kind = "image" if meta.kind == "image" else "array"
        rows = RowSpec(kind, tuple(meta.shape), list(meta.feature_names) if kind == "array" else [],
                       picture=tuple(meta.image_shape) or picture_of(tuple(meta.shape)))
        to_model = functools.partial(array_to_model, shape=tuple(meta.shape))

        def to_user(x):
            return {"x": to_json(x.numpy())}

        shift = 0.0
    metrics = {"training": json.loads((path / "config.json").read_text()).get("extra", {}).get("training", {})}
    if (path / EVALUATION).exists():
        metrics["evaluation"] = json.loads((path / EVALUATION).read_text())

    def examples(source: str | None = None):
        dataset = load_for_run(source, cfg, meta)
        x, y = dataset.split("test") if len(dataset.x_test) else dataset.split("all")
        return x[:MAX_EXAMPLES], None if y is None else y[:MAX_EXAMPLES]

    m = cfg.model
    name = (f"{getattr(m, 'family', 'vae')} on {cfg.data.source} ({meta.kind} rows of shape {list(meta.shape)}): "
            f"{m.network} network, latent_dim {m.latent_dim}, {m.likelihood} likelihood, {m.prior} prior")
    return Served(model, name, "run", rows, to_model, to_user, class_names=list(meta.class_names),
                  log_jacobian=shift, shift_terms=table_shift(meta.table) if meta.table else {},
                  metrics=metrics, examples=examples,
                  unit="nats per example, original units" if meta.table else
                  "nats per example, values as the model sees them",
                  preprocessing={"data": meta.to_dict(), "how": HOW_TABLE if meta.table else HOW_IMAGE})


HOW_IMAGE = "images and vectors: values as stored (pixels in [0, 1]), shape (C, H, W) or (D,)"


def array_to_model(rows, *, shape):
    return torch.from_numpy(np.ascontiguousarray(rows, np.float32).reshape(len(rows), *shape))


def from_front_door(est, source: str) -> Served:
    """``vaekit.VAE`` and the semi-supervised classifier (M2, or M1+M2 through
    ``vaekit.serve.semisupervised``): rows in the fitted shape and units."""
    from vaekit.estimators.inputs import from_model, log_jacobian_rows, to_model

    inputs = est.inputs_
    if inputs.kind == "table":
        rows = table_rows(inputs.table)
        user_to_model, to_user, _ = table_maps(inputs.table)
    else:
        shape = tuple(inputs.input_shape)
        kind = "image" if len(shape) >= 2 else "array"
        rows = RowSpec(kind, shape, [f"x{i}" for i in range(math.prod(shape))] if kind == "array" else [],
                       picture=picture_of(tuple(inputs.model_input_shape)))
        user_to_model = functools.partial(to_model, inputs, name="x")

        def to_user(x):
            return {"x": to_json(from_model(inputs, x))}

    if inputs.table:
        shift_terms = table_shift(inputs.table)
    else:
        shift_terms = {"const": -float(np.log(np.asarray(inputs.scale, np.float64)).sum()) if inputs.scale else 0.0}
    common = {"rows": rows, "to_model": user_to_model, "to_user": to_user, "shift_terms": shift_terms,
              "log_jacobian": lambda x: log_jacobian_rows(inputs, x.cpu()),
              "preprocessing": {"inputs": inputs.to_dict(), "how": HOW_TABLE if inputs.table else (
                  "x_model = (x - mean) / scale when mean is given, then reshaped to model_input_shape")}}
    if getattr(est, "m1_", None) is not None:  # M1+M2: M2 reads M1's code z1
        return from_m1m2(est, source, **common)
    classes = [str(c) for c in getattr(est, "classes_", [])]
    history = getattr(est, "history_", None)
    metrics = {"best_val_elbo": getattr(history, "best_val_elbo", None)} if history is not None else {}
    what = "semi-supervised M2" if classes else "VAE"
    return Served(est.model_, f"{what} ({source}), rows of shape {list(inputs.input_shape)}, latent_dim "
                              f"{est.model_.latent_dim}, {inputs.likelihood} likelihood", source,
                  condition="label" if classes else "", class_names=classes,
                  unit="nats per example, original units", metrics=metrics, **common)


def from_saved_model(model, config) -> Served:
    """A bare model (``vaekit.io.save_model``): rows are the model's own input, vectors or images."""
    shape = tuple(model.event_shape)
    kind = "image" if len(shape) == 3 else "array"
    rows = RowSpec(kind, shape, [f"x{i}" for i in range(math.prod(shape))] if kind == "array" else [],
                   picture=picture_of(shape))
    n_classes = int(getattr(model, "n_classes", 0) or 0)
    n_covariates = int(getattr(config, "n_covariates", 0) or 0)
    condition = "label" if n_classes else ("covariates" if n_covariates else "")
    what = f"{getattr(config, 'family', type(model).__name__)} model" if config else type(model).__name__
    details = f", {config.likelihood} likelihood, {config.prior} prior" if config else ""
    return Served(model, f"{what}, rows of shape {list(shape)}, latent_dim {model.latent_dim}{details}", "model",
                  rows, functools.partial(array_to_model, shape=shape), lambda x: {"x": to_json(x.numpy())},
                  condition=condition, class_names=[str(i) for i in range(n_classes)], condition_size=n_covariates,
                  preprocessing={"how": "none: rows are the model's input"})


def with_data(served: Served, source: str | Path) -> Served:
    """Use the rows in ``source`` for the explorer's map (and the export's real-data check): for a run,
    any data its ``vaekit train`` could read; otherwise a .npy, .csv or .parquet file of user rows."""
    if served.application in ("recommender", "molecules"):
        raise ValueError(f"--data is not used with a {served.source}; leave it out (its graphs are checked on rows "
                         "drawn from the model).")
    if served.source == "run":
        served.examples = functools.partial(served.examples, str(source))
        return served
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"No data file at {path}; pass a .npy, .csv or .parquet file of rows.")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        rows = np.load(path, allow_pickle=False)
    elif suffix in (".csv", ".parquet"):
        import pandas as pd

        rows = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        if served.rows.kind != "table":
            rows = rows.to_numpy(np.float32)
    else:
        raise ValueError(f"Cannot read rows from {path.name!r}; use .npy, .csv or .parquet.")
    x = served.to_model(rows[:MAX_EXAMPLES])
    served.examples = lambda: (x, None)
    return served
