"""The scikit-learn front door: ``vaekit.VAE(latent_dim=...).fit(X).transform(X)``.

Inputs may be numpy arrays, torch tensors or pandas frames; images (N, H, W) or (N, C, H, W) keep
their shape on the way out; data frames (numbers, text, booleans, missing cells) use the mixed-type
table likelihood and come back as data frames. Real-valued data is standardised internally and every
log-likelihood is reported in the original units (the Jacobian of the standardisation is included),
in nats. ``family="hierarchical"`` gives a two-layer model through the same interface.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import torch
from sklearn.base import TransformerMixin

from vaekit import checks
from vaekit.config import CONSTANT_LR, ModelConfig, TrainConfig, build_model
from vaekit.estimators.base import Estimator
from vaekit.estimators.inputs import (
    Inputs,
    check_array,
    fit_inputs,
    flat_image_side,
    from_model,
    gaussian_scale,
    likelihood_options,
    log_jacobian_rows,
    network_for,
    to_model,
)
from vaekit.evaluate import log_likelihood, posterior_means
from vaekit.models import init_from_data
from vaekit.train import fit

log = logging.getLogger("vaekit")


def epochs_for(epochs: int | str, steps: int, n: int, batch_size: int) -> int:
    """``epochs``, or for "auto" about ``steps`` gradient steps (between 20 and 400 epochs)."""
    if epochs != "auto":
        return int(epochs)
    return int(np.clip(math.ceil(steps / math.ceil(n / batch_size)), 20, 400))


class VAE(TransformerMixin, Estimator):
    """A variational autoencoder with scikit-learn conventions.

    ``likelihood="auto"`` picks Bernoulli for 0/1 data, the table likelihood for data frames and a
    Gaussian otherwise: standardised per feature with a learned scale per feature for arrays, and for
    images ((N, H, W) or (N, C, H, W)) mapped onto [0, 1] with one offset and one scale for all pixels,
    with one learned scale shared by all of them (``gaussian_scale="auto"``; "learned", "shared" or "predicted"
    choose); pass images as images, not flattened. ``network="auto"`` picks a convolutional network
    for images and an MLP otherwise. ``score_samples`` is the importance-weighted log p(x) per sample in
    nats (higher is better). ``epochs="auto"`` trains for about ``steps`` gradient steps.
    """

    PARAMS = {
        "latent_dim": lambda n, v: checks.integer(n, v, low=1),
        "family": lambda n, v: checks.choice(n, v, ("vae", "hierarchical")),
        "hidden": checks.widths, "channels": checks.widths,
        "epochs": checks.epochs, "steps": lambda n, v: checks.integer(n, v, low=1),
        "batch_size": lambda n, v: checks.integer(n, v, low=1),
        "lr": lambda n, v: checks.real(n, v, low=0, low_open=True),
        "beta": lambda n, v: checks.real(n, v, low=0),
        "patience": lambda n, v: checks.integer(n, v, low=0),
        "k": lambda n, v: checks.integer(n, v, low=1),
        "prior": lambda n, v: checks.choice(n, v, ("normal", "mixture", "vamp")),
        "network": lambda n, v: checks.choice(n, v, ("auto", "mlp", "conv")),
        "gaussian_scale": lambda n, v: checks.choice(n, v, ("auto", "learned", "shared", "predicted")),
        "precision": lambda n, v: checks.choice(n, v, ("auto", "fp32", "bf16", "fp16")),
        "random_state": checks.seed,
    }

    def __init__(self, latent_dim: int = 16, *, family: str = "vae", likelihood: str = "auto",
                 prior: str = "normal", network: str = "auto", gaussian_scale: str = "auto",
                 hidden: tuple[int, ...] = (512, 256), channels: tuple[int, ...] = (32, 64),
                 epochs: int | str = 50, steps: int = 2000,
                 batch_size: int = 128, lr: float = 1e-3, beta: float = 1.0, patience: int = 0, k: int = 1000,
                 device: str = "auto", precision: str = "auto", random_state: int | None = 0, verbose: int = 0):
        self.latent_dim, self.family, self.likelihood, self.prior = latent_dim, family, likelihood, prior
        self.network, self.gaussian_scale, self.hidden, self.channels = network, gaussian_scale, hidden, channels
        self.epochs, self.steps, self.batch_size, self.lr, self.beta = epochs, steps, batch_size, lr, beta
        self.patience, self.k = patience, k
        self.device, self.precision, self.random_state, self.verbose = device, precision, random_state, verbose

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, X, y=None, X_val=None):
        self._check_params()
        self.inputs_, message = fit_inputs(X, likelihood=self.likelihood)
        side = flat_image_side(X, self.inputs_)
        if side:  # standardising each pixel on its own wrecks the features of images (features.md: 47.9% vs 91.2%)
            warnings.warn(f"X looks like flattened {side}x{side} images; pass them as an (N, {side}, {side}) array to "
                          "get the image model (one scale for all pixels, a convolutional network), whose features "
                          "are far better (benchmarks/results/features.md).", UserWarning, stacklevel=2)
        if message:
            log.info("vaekit.VAE: %s", message)
            if self.verbose:
                print(f"vaekit.VAE: {message}")
        inputs = self.inputs_
        network = network_for(inputs, self.network)
        self.model_config_ = ModelConfig(
            family=self.family, input_shape=inputs.model_input_shape, latent_dim=int(self.latent_dim),
            network=network, hidden=checks.widths("hidden", self.hidden),
            channels=checks.widths("channels", self.channels), likelihood=inputs.likelihood,
            likelihood_options=likelihood_options(inputs), prior=self.prior,
            gaussian_scale=gaussian_scale(inputs, self.gaussian_scale))
        seed = self._seed()
        x_train = self._to_model(X)
        x_val = None if X_val is None else self._to_model(X_val, name="X_val")
        torch.manual_seed(seed)
        self.model_ = build_model(self.model_config_)
        init_from_data(self.model_, x_train)
        train_cfg = TrainConfig(
            epochs=epochs_for(self.epochs, self.steps, len(x_train), int(self.batch_size)),
            batch_size=int(self.batch_size), lr=self.lr, beta=self.beta,
            patience=self.patience if x_val is not None else 0, seed=seed, device=self.device,
            precision=self.precision, progress=bool(self.verbose), **CONSTANT_LR)
        self.history_ = fit(self.model_, x_train, x_val=x_val, config=train_cfg)
        self.model_.eval()
        return self

    # -- preprocessing ---------------------------------------------------------------------------
    @property
    def likelihood_(self) -> str:
        return self.inputs_.likelihood

    @property
    def n_features_in_(self) -> int:
        return int(np.prod(self.inputs_.input_shape))

    def _to_model(self, X, *, name: str = "X") -> torch.Tensor:
        return to_model(self.inputs_, X, name=name, owner=type(self).__name__)

    def _from_model(self, x: torch.Tensor):
        return from_model(self.inputs_, x)

    # -- inference -------------------------------------------------------------------------------
    def transform(self, X) -> np.ndarray:
        """Posterior means E_q[z|x], (N, latent vector size). Deterministic."""
        self._check_fitted()
        with self._runtime():
            return posterior_means(self.model_, self._to_model(X)).numpy()

    def inverse_transform(self, Z):
        """Decoded means E[x|z] in the original units and shape."""
        self._check_fitted()
        Z = check_array(Z, name="Z")
        if Z.shape[1:] != (self.model_.latent_dim,):
            raise ValueError(f"Z has {Z.shape[1:]} columns; the model's latent vector has {self.model_.latent_dim}.")
        with torch.inference_mode(), self._runtime():
            px = self.model_.decode(torch.from_numpy(Z).to(self._device()))
            return self._from_model(self.model_.likelihood.mean(px))

    def reconstruct(self, X):
        """E[x | z = E_q[z|x]]: the decoded posterior mean, in the original units and shape."""
        return self.inverse_transform(self.transform(X))

    def sample(self, n_samples: int = 1, *, mean: bool = True, random_state: int | None = None):
        """New data: z ~ p(z), then E[x|z] (``mean=True``) or x ~ p(x|z)."""
        self._check_fitted()
        n = checks.integer("n_samples", n_samples, low=1)
        g = torch.Generator().manual_seed(random_state) if random_state is not None else None
        with torch.inference_mode(), torch.random.fork_rng(devices=[]), self._runtime():
            if g is not None:
                torch.manual_seed(int(torch.randint(2**31, (), generator=g)))
            z = self.model_.sample_latent(n).to(self._device())
            px = self.model_.decode(z)
            x = self.model_.likelihood.mean(px) if mean else self.model_.likelihood.sample(px)
        return self._from_model(x)

    def score_samples(self, X) -> np.ndarray:
        """Importance-weighted log p(x) per sample with ``k`` samples, in nats (higher is better)."""
        self._check_fitted()
        x = self._to_model(X)
        with self._runtime():
            ll = log_likelihood(self.model_, x.to(self._device()), k=int(self.k))
        return ll.double().numpy() + log_jacobian_rows(self.inputs_, x)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per sample in nats."""
        return float(np.mean(self.score_samples(X)))

    def _model_inputs(self, X):
        x = self._to_model(X)
        return x, log_jacobian_rows(self.inputs_, x)

    def evaluate(self, X, *, k: int | None = None) -> dict:
        """ELBO, importance-weighted log-likelihood, bits/dim, KL and active units on X (nats)."""
        return super().evaluate(X, k=int(self.k) if k is None else checks.integer("k", k, low=1))

    # -- persistence -----------------------------------------------------------------------------
    def _fitted_state(self) -> dict:
        return {"inputs": self.inputs_.to_dict()}

    def _restore(self, state: dict) -> None:
        if "inputs" in state:
            self.inputs_ = Inputs.from_dict(state["inputs"])
            return
        # format 1: flat keys in ``extra``
        shape = tuple(state["input_shape"])
        self.inputs_ = Inputs("image" if len(shape) >= 2 else "array", shape, tuple(self.model_config_.input_shape),
                              state["likelihood"], state.get("mean") and np.asarray(state["mean"]).ravel().tolist(),
                              state.get("scale") and np.asarray(state["scale"]).ravel().tolist())
