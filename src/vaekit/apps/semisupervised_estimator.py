"""``vaekit.SemiSupervisedClassifier``: scikit-learn's semi-supervised convention (``fit(X, y)`` with
``y == -1`` for unlabelled rows) over M2 or M1+M2 (Kingma et al. 2014).

``method="m2"`` trains M2 on the data. ``method="m1+m2"`` first trains an unsupervised VAE (M1) on all
rows, then M2 on samples of its latent code z1 ~ q(z1|x); predictions use E[z1|x]. Real-valued data is
standardised internally; 0/1 data uses a Bernoulli likelihood.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

from vaekit.apps.semisupervised import build_m2
from vaekit.apps.semisupervised_train import fit_m2
from vaekit.config import ModelConfig, TrainConfig, build_model, from_dict
from vaekit.estimators import check_array, from_model, to_model
from vaekit.io import load_model, load_weights, read_config, save_model
from vaekit.runtime import resolve_device
from vaekit.train import fit

METHODS = ("m2", "m1+m2")


@torch.inference_mode()
def batched(fn, x: torch.Tensor, device: torch.device, batch_size: int = 1024) -> torch.Tensor:
    """fn over slices of x on ``device``, concatenated on the CPU."""
    return torch.cat([fn(x[i: i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


class SemiSupervisedClassifier(TransformerMixin, ClassifierMixin, BaseEstimator):
    """A classifier that learns from labelled and unlabelled rows (``y == -1``), and a class-conditional
    generator: ``predict``, ``predict_proba``, ``score`` (accuracy), ``transform`` (embeddings) and
    ``sample(n, y=...)``. ``alpha`` is the classification weight of Kingma et al. 2014, eq. 9
    (default 0.1 N as in the paper). ``m1_latent_dim``/``m1_epochs`` size M1 for ``method="m1+m2"``.
    """

    def __init__(self, method: str = "m2", latent_dim: int = 16, *, m1_latent_dim: int = 32,
                 likelihood: str = "auto", network: str = "auto", hidden: tuple[int, ...] = (512, 256),
                 channels: tuple[int, ...] = (32, 64), epochs: int = 50, m1_epochs: int | None = None,
                 batch_size: int = 128, lr: float = 1e-3, alpha: float | None = None, warmup_epochs: int = 0,
                 device: str = "auto", precision: str = "fp32", random_state: int | None = 0, verbose: int = 0):
        self.method, self.latent_dim, self.m1_latent_dim = method, latent_dim, m1_latent_dim
        self.likelihood, self.network, self.hidden, self.channels = likelihood, network, hidden, channels
        self.epochs, self.m1_epochs, self.batch_size, self.lr = epochs, m1_epochs, batch_size, lr
        self.alpha, self.warmup_epochs, self.device, self.precision = alpha, warmup_epochs, device, precision
        self.random_state, self.verbose = random_state, verbose

    # -- preprocessing ---------------------------------------------------------------------------
    def _to_model(self, X, *, name: str = "X") -> torch.Tensor:
        return to_model(self, X, name=name)

    def _from_model(self, X: torch.Tensor) -> np.ndarray:
        return from_model(self, X)

    def _features(self, X) -> torch.Tensor:
        """What M2 sees: the (standardised) data, or E[z1|x] under M1."""
        x = self._to_model(X)
        return x if self.m1_ is None else batched(lambda b: self.m1_.encode(b).mean, x, self._device())

    def _device(self) -> torch.device:
        return next(self.model_.parameters()).device

    def _encode_labels(self, y, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != n:
            raise ValueError(f"y must be 1-D with one label per row of X ({n}), got shape {y.shape}; "
                             "mark unlabelled rows with -1.")
        if y.dtype.kind not in "iufbO":
            raise ValueError(f"y has dtype {y.dtype}; pass integer (or object) labels with -1 for unlabelled rows.")
        labelled = np.array([v != -1 for v in y], dtype=bool)
        self.classes_ = np.unique(y[labelled])
        if len(self.classes_) < 2:
            raise ValueError(f"y has {len(self.classes_)} labelled class(es); label at least one row of "
                             "each of two or more classes (-1 marks unlabelled rows).")
        codes = np.full(n, -1, dtype=np.int64)
        codes[labelled] = np.searchsorted(self.classes_, y[labelled])
        return codes

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, X, y):
        if self.method not in METHODS:
            raise ValueError(f"Unknown method {self.method!r}; choose 'm2' or 'm1+m2'.")
        X = check_array(X)
        codes = self._encode_labels(y, len(X))
        self.input_shape_ = X.shape[1:]
        self.n_features_in_ = int(np.prod(self.input_shape_))
        binary = bool(np.isin(X, (0.0, 1.0)).all())
        self.likelihood_ = self.likelihood if self.likelihood != "auto" else ("bernoulli" if binary else "gaussian")
        if self.likelihood_ in ("gaussian", "laplace"):
            std = X.std(0)
            self.mean_, self.scale_ = X.mean(0), np.where(std > 1e-8, std, 1.0).astype(np.float32)
        else:
            self.mean_ = self.scale_ = None
        image = X.ndim >= 3
        self.model_input_shape_ = ((1, *X.shape[1:]) if X.ndim == 3 else X.shape[1:]) if image else (self.n_features_in_,)
        network = self.network if self.network != "auto" else ("conv" if image and min(X.shape[-2:]) >= 4 else "mlp")
        seed = self.random_state if self.random_state is not None else int(np.random.randint(2**31))
        torch.manual_seed(seed)
        data_config = ModelConfig(input_shape=tuple(int(s) for s in self.model_input_shape_),
                                  network=network, hidden=tuple(self.hidden), channels=tuple(self.channels),
                                  likelihood=self.likelihood_)
        x = self._to_model(X)
        steps = -(-max(int((codes < 0).sum()), int((codes >= 0).sum())) // self.batch_size)
        train = {"batch_size": self.batch_size, "lr": self.lr, "seed": seed, "device": self.device,
                 "precision": self.precision, "progress": bool(self.verbose)}
        self.m1_, self.m1_config_, x_scale = None, None, None
        if self.method == "m1+m2":
            self.m1_config_ = ModelConfig(**{**data_config.__dict__, "latent_dim": self.m1_latent_dim})
            self.m1_ = build_model(self.m1_config_)
            fit(self.m1_, x, config=TrainConfig(epochs=self.m1_epochs or self.epochs, **train))
            self.m1_.eval()
            device = next(self.m1_.parameters()).device
            x = batched(lambda b: self.m1_.encode(b).mean, x, device)  # (N, m1_latent_dim)
            x_scale = batched(lambda b: self.m1_.encode(b).stddev, self._to_model(X), device)
            self.model_config_ = ModelConfig(input_shape=(self.m1_latent_dim,), latent_dim=self.latent_dim,
                                             hidden=tuple(self.hidden), likelihood="gaussian",
                                             n_classes=len(self.classes_))
        else:
            self.model_config_ = ModelConfig(**{**data_config.__dict__, "latent_dim": self.latent_dim,
                                                "n_classes": len(self.classes_)})
        self.model_ = build_m2(self.model_config_)
        cfg = TrainConfig(epochs=self.epochs, kl_schedule="linear" if self.warmup_epochs else "constant",
                          warmup_steps=self.warmup_epochs * steps, **train)
        self.history_ = fit_m2(self.model_, x, torch.from_numpy(codes), alpha=self.alpha, config=cfg,
                               x_scale=x_scale)
        return self

    # -- inference -------------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """q(y|x), (N, n_classes), columns in the order of ``classes_``."""
        return batched(lambda b: self.model_.classify(b).probs, self._features(X), self._device()).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]

    def transform(self, X) -> np.ndarray:
        """Embeddings, deterministic: E[z1|x] under M1 for ``m1+m2``, (N, m1_latent_dim); for ``m2``,
        [q(y|x), sum_y q(y|x) E[z|x,y]], (N, n_classes + latent_dim): M2's z holds what the class does
        not (style), so the class probabilities carry the class information."""
        if self.m1_ is not None:
            return self._features(X).numpy()
        m, K = self.model_, self.model_.n_classes

        def embed(b):
            probs = m.classify(b).probs.T  # (K, B)
            means = torch.stack([m.encode(b, torch.full((len(b),), k, device=b.device)).mean for k in range(K)])
            return torch.cat([probs.T, (probs.unsqueeze(-1) * means).sum(0)], -1)  # (B, K + L)
        return batched(embed, self._features(X), self._device()).numpy()

    def sample(self, n_samples: int = 1, *, y=None, mean: bool = True, random_state: int | None = None) -> np.ndarray:
        """New data of class ``y`` (one label, or one per sample; default: uniform over classes):
        z ~ p(z), then E[x|y,z] (``mean=True``) or x ~ p(x|y,z); through M1's decoder for ``m1+m2``."""
        n = int(n_samples)
        if n < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}.")
        g = torch.Generator().manual_seed(0 if random_state is None else int(random_state))
        if y is None:
            codes = torch.randint(len(self.classes_), (n,), generator=g)
        else:
            labels = np.broadcast_to(np.asarray(y, dtype=self.classes_.dtype), (n,))
            unknown = sorted(set(labels.tolist()) - set(self.classes_.tolist()))
            if unknown:
                raise ValueError(f"Unknown class {unknown[0]!r}; the model knows {self.classes_.tolist()}.")
            codes = torch.from_numpy(np.searchsorted(self.classes_, labels)).long()
        device = self._device()
        with torch.inference_mode():
            z = torch.randn(n, self.model_.latent_dim, generator=g).to(device)
            px = self.model_.decode(z, codes.to(device))
            lik = self.model_.likelihood
            x = lik.mean(px) if mean or self.m1_ is not None else lik.sample(px)
            if self.m1_ is not None:
                px = self.m1_.decode(x)
                x = self.m1_.likelihood.mean(px) if mean else self.m1_.likelihood.sample(px)
        return self._from_model(x)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """A run directory: M2 as ``config.json`` + ``model.safetensors`` (preprocessing and classes in
        its ``extra``), and for ``m1+m2`` M1 in ``m1/`` (loadable by ``vaekit.io.load_model``)."""
        path = Path(path)
        extra = {"estimator": "SemiSupervisedClassifier", "model_class": "SemiSupervisedVAE",
                 "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()},
                 "classes": self.classes_.tolist(), "input_shape": list(self.input_shape_),
                 "likelihood": self.likelihood_,
                 "mean": None if self.mean_ is None else self.mean_.tolist(),
                 "scale": None if self.scale_ is None else self.scale_.tolist()}
        if self.m1_ is not None:
            save_model(self.m1_, self.m1_config_, path / "m1", extra={"role": "M1 of a vaekit M1+M2 model"})
        return save_model(self.model_, self.model_config_, path, extra=extra)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> SemiSupervisedClassifier:
        path = Path(path)
        meta = read_config(path)
        extra = meta.get("extra", {})
        if extra.get("estimator") != "SemiSupervisedClassifier":
            raise ValueError(f"{path} is not a semi-supervised run directory (made by vaekit ssl-train or "
                             "SemiSupervisedClassifier.save); use vaekit.io.load_model for other models.")
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in extra["params"].items()}
        self = cls(**params)
        self.model_config_ = from_dict(ModelConfig, meta["model"], where="model.")
        self.model_ = load_weights(build_m2(self.model_config_), path).to(resolve_device(device))
        self.m1_ = self.m1_config_ = None
        if self.method == "m1+m2":
            self.m1_, self.m1_config_, _ = load_model(path / "m1", device=resolve_device(device))
        self.classes_ = np.asarray(extra["classes"])
        self.likelihood_, self.input_shape_ = extra["likelihood"], tuple(extra["input_shape"])
        self.n_features_in_ = int(np.prod(self.input_shape_))
        data_shape = self.m1_config_.input_shape if self.m1_ is not None else self.model_config_.input_shape
        self.model_input_shape_ = tuple(data_shape)
        def as_array(v):
            return None if v is None else np.asarray(v, np.float32).reshape(self.input_shape_)
        self.mean_, self.scale_ = as_array(extra["mean"]), as_array(extra["scale"])
        return self


__all__ = ["SemiSupervisedClassifier"]
