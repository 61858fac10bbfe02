"""The estimators' preprocessing, written once: input checks, the "auto" likelihood, standardisation with
its Jacobian, image shapes, and data frames through the table stack (``vaekit.data.tabular``).

``fit_inputs(X)`` returns ``Inputs`` (JSON-able, saved with the estimator); ``to_model`` maps user data
to model arrays, ``from_model`` maps model output back to the user's shape and units, and
``log_jacobian_rows`` converts model-space log-densities to the user's units (nats).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from vaekit.data import tabular
from vaekit.data.dataset import choose_likelihood


def check_array(X, *, name: str = "X", n_features: int | None = None, owner: str = "the model") -> np.ndarray:
    """Float32 array of shape (N, ...); a ValueError names any problem (worded as scikit-learn's own
    checks are, so tools that look for its messages find them)."""
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a sparse matrix, and sparse input is not supported here; pass "
                        f"{name}.toarray() (or use vaekit.Recommender for sparse click data).")
    if isinstance(X, pd.DataFrame):
        non_numeric = [c for c, t in X.dtypes.items() if not pd.api.types.is_numeric_dtype(t)]
        if non_numeric:
            raise ValueError(f"{name} has non-numeric columns {non_numeric[:5]}; encode them or drop them.")
        X = X.to_numpy()
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    try:
        X = np.asarray(X)
        if X.dtype.kind == "c":
            raise ValueError(f"Complex data not supported: {name} has complex values; pass real numbers.")
        X = X.astype(np.float32)
    except (TypeError, ValueError) as e:
        if "Complex data" in str(e):
            raise
        raise ValueError(f"{name} must be numeric ({e}).") from None
    if X.ndim < 2:
        raise ValueError(f"{name} is {X.ndim}-D; Reshape your data: pass a 2-D array (n_samples, n_features), "
                         "e.g. X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample.")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")
    if X[0].size == 0:
        raise ValueError(f"{name} is empty: 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
    if n_features is not None and X.ndim == 2 and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but {owner} is expecting {n_features} features "
                         "as input (the number it was fitted on); pass data with the same features.")
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).reshape(len(X), -1).any(1).sum())
        raise ValueError(f"{name} contains NaN or infinite values in {bad} sample(s); remove or impute them, "
                         "or pass a pandas DataFrame (missing cells are then left out of the likelihood).")
    return X


@dataclass
class Inputs:
    kind: str  # "array", "image" or "table"
    input_shape: tuple[int, ...]  # one example as the user passes it (tables: number of columns)
    model_input_shape: tuple[int, ...]  # one example as the model sees it
    likelihood: str
    mean: list | None = None  # standardisation of real-valued arrays
    scale: list | None = None
    table: dict | None = None  # the table spec for data frames

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> Inputs:
        d = dict(d)
        d["input_shape"], d["model_input_shape"] = tuple(d["input_shape"]), tuple(d["model_input_shape"])
        return cls(**d)


def fit_inputs(X, *, likelihood: str = "auto", name: str = "X") -> tuple[Inputs, str]:
    """Learn the preprocessing from training data; also returns a sentence saying what was chosen."""
    if isinstance(X, pd.DataFrame) and (likelihood in ("auto", "table")):
        spec = tabular.fit_table(X, name=name)
        width = tabular.width(spec)
        return (Inputs("table", (X.shape[1],), (width,), "table", table=spec),
                f"likelihood='auto' chose 'table' for a data frame of {X.shape[1]} columns "
                f"({sum(c['kind'] == 'numeric' for c in spec['columns'])} numeric).")
    X = check_array(X, name=name)
    binary = bool(np.isin(X, (0.0, 1.0)).all())
    chosen, reason = choose_likelihood(binary=binary, table=False)
    chosen = chosen if likelihood == "auto" else likelihood
    mean = scale = None
    image = X.ndim >= 3
    if chosen in ("gaussian", "laplace") and image:
        # pixels share one unit: one offset and one scale for all of them, mapping the training images onto
        # [0, 1] (per-pixel standardisation would blow a rarely lit pixel up to tens of standard deviations;
        # on grey MNIST, standardising all pixels with one mean and scale also gave worse features than [0, 1])
        lo, span = float(X.min()), float(X.max() - X.min())
        span = span if span > 1e-8 else 1.0
        mean, scale = np.full(X.shape[1:], lo, np.float32), np.full(X.shape[1:], span, np.float32)
    elif chosen in ("gaussian", "laplace"):
        std = X.std(0)
        mean, scale = X.mean(0), np.where(std > 1e-8, std, 1.0).astype(np.float32)  # constant features stay put
    shape = X.shape[1:]
    model_shape = ((1, *shape) if X.ndim == 3 else shape) if image else (int(np.prod(shape)),)
    inputs = Inputs("image" if image else "array", tuple(int(s) for s in shape), tuple(int(s) for s in model_shape),
                    chosen, None if mean is None else mean.tolist(), None if scale is None else scale.tolist())
    return inputs, f"likelihood='{likelihood}' chose {chosen!r} ({reason})." if likelihood == "auto" else ""


def flat_image_side(X, inputs: Inputs) -> int:
    """The side of the square images a flat real-valued array seems to hold (0 if it does not): D a
    square of at least 8 x 8 values, all in [0, 1] or whole numbers in 0..255, as pixels usually are."""
    if inputs.kind != "array" or inputs.likelihood not in ("gaussian", "laplace") or len(inputs.input_shape) != 1:
        return 0
    X = check_array(X, name="X")
    side = int(np.sqrt(X.shape[1]) + 0.5)
    if side < 8 or side * side != X.shape[1] or not len(X) or X.min() < 0:
        return 0
    unit, levels = X.max() <= 1.0, X.max() <= 255 and bool(np.all(np.round(X) == X))
    return side if unit or levels else 0


def network_for(inputs: Inputs, choice: str = "auto") -> str:
    """The network for "auto": convolutional for images at least 4 pixels on a side, an MLP otherwise."""
    if choice != "auto":
        return choice
    return "conv" if inputs.kind == "image" and min(inputs.model_input_shape[-2:]) >= 4 else "mlp"


def likelihood_options(inputs: Inputs) -> dict:
    """The likelihood's options the data decides: for a table, its columns for the shared table
    likelihood (with a 0.05 floor on numeric scales); nothing otherwise."""
    if inputs.kind != "table":
        return {}
    return {"columns": tabular.likelihood_columns(inputs.table), "min_scale": 0.05}


def gaussian_scale(inputs: Inputs, choice: str = "auto") -> str:
    """The Gaussian likelihood's scale for "auto": one learned scale shared by every pixel for images
    (better features, see ``GaussianLikelihood``), one per feature otherwise (the best density on tables)."""
    if choice != "auto":
        return choice
    return "shared" if inputs.kind == "image" else "learned"


def to_model(inputs: Inputs, X, *, name: str = "X", owner: str = "the model") -> torch.Tensor:
    """User data -> the model's input, checked against the fitted shape or columns."""
    if inputs.kind == "table":
        return torch.from_numpy(tabular.encode_table(X, inputs.table, name=name))
    flat = len(inputs.input_shape) == 1
    X = check_array(X, name=name, n_features=int(inputs.input_shape[0]) if flat else None, owner=owner)
    if X.shape[1:] != inputs.input_shape:
        raise ValueError(f"{name} has shape {X.shape[1:]} per sample but the model was fitted on "
                         f"{inputs.input_shape}; pass data with the same features.")
    if inputs.mean is not None:
        mean = np.asarray(inputs.mean, np.float32).reshape(inputs.input_shape)
        scale = np.asarray(inputs.scale, np.float32).reshape(inputs.input_shape)
        X = (X - mean) / scale
    return torch.from_numpy(np.ascontiguousarray(X).reshape(len(X), *inputs.model_input_shape))


def from_model(inputs: Inputs, x: torch.Tensor) -> np.ndarray | pd.DataFrame:
    """The model's output -> the user's shape and original units (the inverse of ``to_model``)."""
    x = x.detach().float().cpu().numpy()
    if inputs.kind == "table":
        return tabular.decode_table(x.reshape(len(x), -1), inputs.table)
    x = x.reshape(len(x), *inputs.input_shape)
    if inputs.mean is not None:
        x = x * np.asarray(inputs.scale, np.float32).reshape(inputs.input_shape) + np.asarray(
            inputs.mean, np.float32).reshape(inputs.input_shape)
    return x


def log_jacobian_rows(inputs: Inputs, x: torch.Tensor) -> np.ndarray:
    """(N,) nats to add to model-space log-densities of the rows ``x`` (model arrays)."""
    if inputs.kind == "table":
        return tabular.log_jacobian_rows(x.cpu().numpy().reshape(len(x), -1), inputs.table)
    if inputs.scale is None:
        return np.zeros(len(x))
    return np.full(len(x), -float(np.log(np.asarray(inputs.scale, np.float64)).sum()))
