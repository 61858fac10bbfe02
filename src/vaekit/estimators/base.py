"""``Estimator``: the base every vaekit estimator stands on (``VAE``, ``SemiSupervisedClassifier``,
``AnomalyDetector``, ``TimeSeriesDetector`` and the applications' estimators).

scikit-learn conventions: ``__init__`` only stores hyperparameters (keyword-only), fitted attributes
end in ``_``, ``fit`` returns ``self``, methods that need a fitted model raise ``NotFittedError``.
The base provides what every estimator needs once:

- parameter checks before any work starts (``PARAMS``: name -> check, from ``vaekit.checks``), with
  deprecated names (``ALIASES``: old -> new) accepted with a warning;
- ``save(path, overwrite=False)`` / ``load(path)``: one directory format (``vaekit.io``), the
  estimator's name, its parameters and its fitted state (``_fitted_state`` / ``_restore``) in
  ``config.json``; an existing directory is never replaced without ``overwrite=True``;
- the runtime policy (threads, no per-step argument validation) around heavy work (``_runtime``).
"""

from __future__ import annotations

import contextlib
import inspect
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from vaekit.io import CONFIG, read_config, save_model
from vaekit.runtime import no_arg_validation, num_threads, resolve_device


def jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class Estimator(BaseEstimator):
    PARAMS: ClassVar[dict[str, Callable]] = {}  # parameter -> check(name, value) returning the value
    ALIASES: ClassVar[dict[str, str]] = {}  # deprecated parameter name -> current name

    # -- parameters ----------------------------------------------------------------------------------
    def _take_aliases(self, deprecated: dict) -> None:
        """Call at the end of ``__init__(..., **deprecated)``: old names set the new ones, with a warning."""
        for old, value in deprecated.items():
            if old not in self.ALIASES:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {old!r}")
            new = self.ALIASES[old]
            warnings.warn(f"{type(self).__name__}({old}=...) is deprecated; use {new}=... instead.",
                          DeprecationWarning, stacklevel=3)
            setattr(self, new, value)

    def _check_params(self) -> None:
        """Check every declared parameter; a bad value is one ValueError naming the fix."""
        for name, check in self.PARAMS.items():
            check(name, getattr(self, name))

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit(X) before using it.")

    def _seed(self) -> int:
        return int(self.random_state) if self.random_state is not None else int(np.random.randint(2**31))

    def _device(self) -> torch.device:
        return next(self.model_.parameters()).device

    def _runtime(self):
        """Thread policy and no per-call argument validation, for every heavy path."""
        stack = contextlib.ExitStack()
        stack.enter_context(num_threads(0))
        stack.enter_context(no_arg_validation())
        return stack

    # -- evaluation ----------------------------------------------------------------------------------
    def _model_inputs(self, X) -> tuple[torch.Tensor, np.ndarray]:
        """(model arrays, per-row log-Jacobian in nats) for user data X; estimators override."""
        raise NotImplementedError(f"{type(self).__name__} does not define evaluation on raw data.")

    def evaluate(self, X, *, k: int = 1000) -> dict:
        """ELBO, importance-weighted log p(x) (k samples), bits/dim, KL and active units of the model
        on X, in nats per example in the units of X (the preprocessing's Jacobian included)."""
        from vaekit.evaluate import bits_per_dim, evaluate

        self._check_fitted()
        x, shift_rows = self._model_inputs(X)
        with self._runtime():
            record = evaluate(self.model_, x.to(self._device()), k=k)
        return shift_record(record, float(np.mean(shift_rows)), bits_per_dim)

    # -- persistence ---------------------------------------------------------------------------------
    def _fitted_state(self) -> dict:
        """JSON-able fitted attributes besides the weights (preprocessing, classes, thresholds)."""
        return {}

    def _restore(self, state: dict) -> None:
        """Set the fitted attributes from ``_fitted_state``'s output (or a format-1 ``extra``)."""

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the fitted estimator to the directory ``path`` (``config.json`` + ``model.safetensors``).
        An existing saved model there is replaced only with ``overwrite=True``."""
        self._check_fitted()
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} is a file; choose a directory to save the model in.")
        if (path / CONFIG).exists() and not overwrite:
            raise ValueError(f"{path} already holds a saved model; pass overwrite=True or choose another directory.")
        params = {k: jsonable(v) for k, v in self.get_params(deep=False).items()}
        extra = {"estimator": type(self).__name__, "params": params, "state": self._fitted_state()}
        created = not path.exists()
        try:
            save_model(self.model_, self.model_config_, path, extra=extra, kind=type(self).__name__)
            self._save_parts(path)
        except BaseException:
            if created:
                shutil.rmtree(path, ignore_errors=True)
            raise
        return path

    def _save_parts(self, path: Path) -> None:
        """Save further models (e.g. M1 of M1+M2) in sub-directories."""

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu"):
        """The estimator saved in ``path`` (by ``save`` of this class, or of the previous release)."""
        from vaekit.io import load_model

        path = Path(path)
        meta = read_config(path)
        extra = meta.get("extra", {})
        if extra.get("estimator") != cls.__name__:
            what = extra.get("estimator") or meta.get("kind", "model")
            raise ValueError(f"{path} holds a {what}, not a {cls.__name__}; open it with vaekit.load(path).")
        self = cls(**cls._params_from(extra.get("params", {})))
        self.model_, self.model_config_, _ = load_model(path, device=resolve_device(device))
        self._restore(extra.get("state", extra))
        self._load_parts(path, device)
        return self

    def _load_parts(self, path: Path, device: str) -> None:
        """Load what ``_save_parts`` wrote."""

    @classmethod
    def _params_from(cls, saved: dict) -> dict:
        """Constructor arguments from saved parameters: lists back to tuples where the default is a
        tuple, deprecated names mapped to current ones, unknown names dropped."""
        signature = inspect.signature(cls.__init__).parameters
        out = {}
        for name, value in saved.items():
            name = cls.ALIASES.get(name, name)
            if name not in signature:
                continue
            if isinstance(signature[name].default, tuple) and isinstance(value, list):
                value = tuple(value)
            out[name] = value
        return out


def shift_record(record: dict, shift: float, bits_per_dim) -> dict:
    """Add a log-Jacobian (nats) to the densities of an evaluation record and redo the bits/dim."""
    for key in ("elbo", "log_px_z", "log_likelihood", "log_likelihood_median"):
        if key in record:
            record[key] += shift
    record["elbo_bits_per_dim"] = bits_per_dim(-record["elbo"], record["n_dims"])
    if "log_likelihood" in record:
        record["nll"] = -record["log_likelihood"]
        record["bits_per_dim"] = bits_per_dim(record["nll"], record["n_dims"])
    record["log_jacobian"] = shift
    return record
