"""The scikit-learn front door: ``vaekit.VAE(latent_dim=...).fit(X).transform(X)``.

``__init__`` only stores hyperparameters; fitted attributes end in ``_``. Inputs may be numpy arrays,
torch tensors or pandas frames; images (N, H, W) or (N, C, H, W) keep their shape on the way out.
Real-valued data is standardised internally and every log-likelihood is reported in the original
units (the Jacobian of the standardisation is included), in nats.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from vaekit.config import ModelConfig, TrainConfig, build_model
from vaekit.evaluate import evaluate, log_likelihood, posterior_means
from vaekit.io import load_model, save_model
from vaekit.models import init_from_data
from vaekit.runtime import resolve_device
from vaekit.train import fit

log = logging.getLogger("vaekit")


def check_array(X, *, name: str = "X") -> np.ndarray:
    """Float32 array of shape (N, ...); a ValueError names any problem."""
    if hasattr(X, "to_numpy") and hasattr(X, "dtypes"):  # pandas DataFrame
        non_numeric = [c for c, t in X.dtypes.items() if not pd.api.types.is_numeric_dtype(t)]
        if non_numeric:
            raise ValueError(f"{name} has non-numeric columns {non_numeric[:5]}; encode them or drop them.")
        X = X.to_numpy()
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    try:
        X = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be numeric ({e}).") from None
    if X.ndim < 2:
        raise ValueError(f"{name} is {X.ndim}-D; pass a 2-D array (n_samples, n_features), "
                         "e.g. X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample.")
    if X.shape[0] == 0 or X[0].size == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); pass at least one sample and one feature.")
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).reshape(len(X), -1).any(1).sum())
        raise ValueError(f"{name} contains NaN or infinite values in {bad} sample(s); remove or impute them.")
    return X


def to_model(est, X, *, name: str = "X") -> torch.Tensor:
    """User data -> the model's input: checked against the fitted shape (``input_shape_``), standardised
    with ``mean_``/``scale_`` when the estimator has them, reshaped to ``model_input_shape_``."""
    X = check_array(X, name=name)
    if X.shape[1:] != est.input_shape_:
        raise ValueError(f"{name} has shape {X.shape[1:]} per sample but the model was fitted on "
                         f"{est.input_shape_}; pass data with the same features.")
    if est.mean_ is not None:
        X = (X - est.mean_) / est.scale_
    return torch.from_numpy(X.reshape(len(X), *est.model_input_shape_))


def from_model(est, X: torch.Tensor) -> np.ndarray:
    """The model's output -> the user's shape and original units (the inverse of ``to_model``)."""
    X = X.detach().float().cpu().numpy().reshape(len(X), *est.input_shape_)
    return X * est.scale_ + est.mean_ if est.mean_ is not None else X


class VAE(TransformerMixin, BaseEstimator):
    """A variational autoencoder with scikit-learn conventions.

    ``likelihood="auto"`` picks Bernoulli for 0/1 data and a Gaussian with learned per-feature scale
    otherwise; ``network="auto"`` picks a convolutional network for images and an MLP otherwise.
    ``score_samples`` is the importance-weighted log p(x) per sample in nats (higher is better).
    """

    def __init__(self, latent_dim: int = 16, *, likelihood: str = "auto", prior: str = "normal",
                 network: str = "auto", hidden: tuple[int, ...] = (512, 256), channels: tuple[int, ...] = (32, 64),
                 epochs: int = 50, batch_size: int = 128, lr: float = 1e-3, beta: float = 1.0,
                 patience: int = 0, k: int = 1000, device: str = "auto", precision: str = "auto",
                 random_state: int | None = 0, verbose: int = 0):
        self.latent_dim, self.likelihood, self.prior, self.network = latent_dim, likelihood, prior, network
        self.hidden, self.channels, self.epochs, self.batch_size = hidden, channels, epochs, batch_size
        self.lr, self.beta, self.patience, self.k = lr, beta, patience, k
        self.device, self.precision, self.random_state, self.verbose = device, precision, random_state, verbose

    # -- preprocessing ---------------------------------------------------------------------------
    def _to_model(self, X, *, name: str = "X") -> torch.Tensor:
        return to_model(self, X, name=name)

    def _from_model(self, X: torch.Tensor) -> np.ndarray:
        return from_model(self, X)

    def _log_jacobian(self) -> float:
        """log |d x_std / d x| summed over features: converts densities back to original units."""
        return 0.0 if self.mean_ is None else -float(np.log(self.scale_).sum())

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, X, y=None, X_val=None):
        X = check_array(X)
        self.input_shape_ = X.shape[1:]
        self.n_features_in_ = int(np.prod(self.input_shape_))
        binary = bool(np.isin(X, (0.0, 1.0)).all())
        likelihood = self.likelihood if self.likelihood != "auto" else ("bernoulli" if binary else "gaussian")
        if self.likelihood == "auto":
            msg = f"vaekit.VAE: likelihood='auto' chose {likelihood!r} ({'0/1' if binary else 'real-valued'} data)."
            log.info(msg)
            if self.verbose:
                print(msg)
        self.likelihood_ = likelihood
        if likelihood in ("gaussian", "laplace"):
            self.mean_ = X.mean(0)
            std = X.std(0)
            self.scale_ = np.where(std > 1e-8, std, 1.0).astype(np.float32)  # constant features stay put
        else:
            self.mean_ = self.scale_ = None
        image = X.ndim >= 3
        self.model_input_shape_ = ((1, *X.shape[1:]) if X.ndim == 3 else X.shape[1:]) if image else (self.n_features_in_,)
        network = self.network if self.network != "auto" else ("conv" if image and min(X.shape[-2:]) >= 4 else "mlp")
        self.model_config_ = ModelConfig(
            input_shape=tuple(int(s) for s in self.model_input_shape_), latent_dim=self.latent_dim,
            network=network, hidden=tuple(self.hidden), channels=tuple(self.channels),
            likelihood=likelihood, prior=self.prior)
        seed = self.random_state if self.random_state is not None else int(np.random.randint(2**31))
        torch.manual_seed(seed)
        self.model_ = build_model(self.model_config_)
        train_cfg = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, beta=self.beta,
                                patience=self.patience if X_val is not None else 0, seed=seed,
                                device=self.device, precision=self.precision, progress=bool(self.verbose))
        x_val = None if X_val is None else self._to_model(X_val, name="X_val")
        x_train = self._to_model(X)
        init_from_data(self.model_, x_train)
        self.history_ = fit(self.model_, x_train, x_val=x_val, config=train_cfg)
        self.model_.eval()
        return self

    # -- inference -------------------------------------------------------------------------------
    def transform(self, X) -> np.ndarray:
        """Posterior means E_q[z|x], (N, latent_dim). Deterministic."""
        return posterior_means(self.model_, self._to_model(X)).numpy()

    def inverse_transform(self, Z) -> np.ndarray:
        """Decoded means E[x|z] in the original units and shape."""
        Z = check_array(Z, name="Z")
        if Z.shape[1:] != (self.latent_dim,):
            raise ValueError(f"Z has {Z.shape[1:]} columns; the model has latent_dim={self.latent_dim}.")
        device = next(self.model_.parameters()).device
        with torch.inference_mode():
            px = self.model_.decode(torch.from_numpy(Z).to(device))
            return self._from_model(self.model_.likelihood.mean(px))

    def reconstruct(self, X) -> np.ndarray:
        """E[x | z = E_q[z|x]]: the decoded posterior mean, in the original units and shape."""
        return self.inverse_transform(self.transform(X))

    def sample(self, n_samples: int = 1, *, mean: bool = True, random_state: int | None = None) -> np.ndarray:
        """New data: z ~ p(z), then E[x|z] (``mean=True``) or x ~ p(x|z)."""
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}.")
        device = next(self.model_.parameters()).device
        g = torch.Generator().manual_seed(random_state) if random_state is not None else None
        with torch.inference_mode(), torch.random.fork_rng(devices=[]):
            if g is not None:
                torch.manual_seed(int(torch.randint(2**31, (), generator=g)))
            z = self.model_.prior().sample((int(n_samples),)).to(device)
            px = self.model_.decode(z)
            x = self.model_.likelihood.mean(px) if mean else self.model_.likelihood.sample(px)
        return self._from_model(x)

    def score_samples(self, X) -> np.ndarray:
        """Importance-weighted log p(x) per sample with ``k`` samples, in nats (higher is better)."""
        ll = log_likelihood(self.model_, self._to_model(X).to(next(self.model_.parameters()).device), k=self.k)
        return ll.double().numpy() + self._log_jacobian()

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per sample in nats."""
        return float(np.mean(self.score_samples(X)))

    def evaluate(self, X, *, k: int | None = None) -> dict:
        """ELBO, importance-weighted log-likelihood, bits/dim, KL and active units on X (nats)."""
        record = evaluate(self.model_, self._to_model(X).to(next(self.model_.parameters()).device),
                          k=self.k if k is None else k)
        shift = self._log_jacobian()
        for key in ("elbo", "log_px_z", "log_likelihood"):
            if key in record:
                record[key] += shift
        n_dims = record["n_dims"]
        record["elbo_bits_per_dim"] = -record["elbo"] / (n_dims * math.log(2))
        if "nll" in record:
            record["nll"] = -record["log_likelihood"]
            record["bits_per_dim"] = record["nll"] / (n_dims * math.log(2))
        return record

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        extra = {"estimator": "VAE", "params": {k: list(v) if isinstance(v, tuple) else v
                                                 for k, v in self.get_params().items()},
                 "input_shape": list(self.input_shape_), "likelihood": self.likelihood_,
                 "mean": None if self.mean_ is None else self.mean_.tolist(),
                 "scale": None if self.scale_ is None else self.scale_.tolist()}
        return save_model(self.model_, self.model_config_, path, extra=extra)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> VAE:
        model, config, extra = load_model(path, device=resolve_device(device))
        if extra.get("estimator") != "VAE":
            raise ValueError(f"{path} holds a model saved without the vaekit.VAE front door; use vaekit.io.load_model.")
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in extra["params"].items()}
        self = cls(**params)
        self.model_, self.model_config_, self.likelihood_ = model, config, extra["likelihood"]
        self.input_shape_ = tuple(extra["input_shape"])
        self.n_features_in_ = int(np.prod(self.input_shape_))
        self.model_input_shape_ = tuple(config.input_shape)
        self.mean_ = None if extra["mean"] is None else np.asarray(extra["mean"], np.float32).reshape(self.input_shape_)
        self.scale_ = None if extra["scale"] is None else np.asarray(extra["scale"], np.float32).reshape(self.input_shape_)
        return self
