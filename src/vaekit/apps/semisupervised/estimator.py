"""``vaekit.SemiSupervisedClassifier``: scikit-learn's semi-supervised convention (``fit(X, y)`` with
``y == -1`` for unlabelled rows) over M2 or M1+M2 (Kingma et al. 2014).

``method="m2"`` trains M2 (model family "m2") on the data. ``method="m1+m2"`` (the default) first
trains an unsupervised VAE (M1) on all rows, then M2 on samples of its latent code z1 ~ q(z1|x);
predictions use E[z1|x]. M1+M2 is the default because it had the lower error at every size measured
(MNIST, the training part of ``benchmarks/semisupervised.py``'s split, one label draw, defaults otherwise;
test error with 5 / 10 labels per class: 1,000 images 26.6% / 24.2% against M2's 38.3% / 30.3%, 3,000
images 19.8% against 55.3% with 5 per class; with 100 and 1,000 labels on 8,000 images the benchmark's
M1+M2 13.4% / 6.9% against M2's 28.0% / 12.0%). ``epochs=100`` (for M1 and M2) against the earlier 50,
on the same draw: 1,000 images x 5 labels per class 20.5% vs 26.6%, 3,000 x 5 15.7% vs 19.8%, 8,000 x 10
7.6% vs 11.45%. ``benchmarks/few_labels.py`` reports other draws. Both train through the one loop,
``vaekit.train.fit``, with M2's objective and a labelled/unlabelled batch plan. Real-valued data is
standardised internally; 0/1 data uses a Bernoulli likelihood; a data frame (mixed columns) goes
through the shared table likelihood (in M1 for ``method="m1+m2"``, in M2's p(x|y,z) for ``method="m2"``,
whose q(y|x) then sees the encoded row with a missing cell at 0), and ``sample`` returns a frame.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import ClassifierMixin, TransformerMixin

from vaekit import checks
from vaekit.apps.semisupervised.objective import check_labels, m1_samples, m2_objective
from vaekit.batching import LabelledUnlabelled
from vaekit.config import CONSTANT_LR, ModelConfig, TrainConfig, build_model
from vaekit.estimators.base import Estimator
from vaekit.estimators.inputs import (
    Inputs,
    check_array,
    fit_inputs,
    from_model,
    gaussian_scale,
    likelihood_options,
    log_jacobian_rows,
    network_for,
    to_model,
)
from vaekit.estimators.vae import epochs_for
from vaekit.evaluate import posterior_moments
from vaekit.io import load_model, save_model
from vaekit.runtime import resolve_device
from vaekit.train import fit

METHODS = ("m2", "m1+m2")
CLASS_PRIORS = ("labelled", "uniform", "learned")
CLASSIFIERS = ("auto", "mlp", "linear", "wide")


def hidden_for(inputs, hidden):
    """``hidden="auto"``: one layer of 64 for a data frame, (512, 256) for arrays and images. On three tables
    (adult, magic.gamma, landsat; 3,000 rows, 100 labels, development draw) the small network had the lower
    error: 17.7 vs 18.4%, 26.4 vs 39.1%, 19.0 vs 19.5%."""
    if hidden != "auto":
        return hidden
    return (64,) if inputs.kind == "table" else (512, 256)


def classifier_for(inputs, classifier: str, method: str) -> str:
    """``classifier="auto"``: "wide" for a data frame under M1+M2, "linear" for a data frame under M2 (its
    q(y|x) already reads the encoded row), "mlp" for arrays and images. On three development tables (adult,
    magic.gamma, campaign; two draws each of 3,000 rows with 20 / 100 / 500 labels,
    ``benchmarks/results/few_labels_tables_dev.md``) the linear q(y|x) on M1's code had a lower mean error
    than the MLP, 18.94% against 20.41%; the wide one (M1's code and the row) 17.10% with ``wide_c`` 0.1
    (17.42 / 17.19 / 17.48 / 17.81% with C 0.03 / 0.3 / 1 / 3), the first configuration below both
    self-training with a logistic regression (17.20%) and a supervised logistic regression (17.18%), and
    below both in 5 of the 9 (table, labels) cells."""
    if classifier != "auto":
        return classifier
    if inputs.kind != "table":
        return "mlp"
    return "wide" if method == "m1+m2" else "linear"


def class_shares(codes: np.ndarray, n_classes: int) -> list[float]:
    """p(y) from the labelled rows' classes (codes >= 0), add-one smoothed: (n_c + 1) / (n + K)."""
    counts = np.bincount(codes[codes >= 0], minlength=n_classes).astype(np.float64)
    return ((counts + 1.0) / (counts.sum() + n_classes)).tolist()


def wide_input(code: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[code, row]: a wide q(y|x)'s input, the model-space row flattened with missing cells at 0."""
    return torch.cat([code, torch.nan_to_num(x.flatten(1).float(), nan=0.0)], -1)


@torch.inference_mode()
def batched(fn, x: torch.Tensor, device: torch.device, batch_size: int = 1024) -> torch.Tensor:
    """fn over slices of x on ``device``, concatenated on the CPU."""
    return torch.cat([fn(x[i: i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


class SemiSupervisedClassifier(TransformerMixin, ClassifierMixin, Estimator):
    """A classifier that learns from labelled and unlabelled rows (``y == -1``), and a class-conditional
    generator: ``predict``, ``predict_proba``, ``score`` (accuracy), ``transform`` (embeddings),
    ``sample(n, y=...)`` and ``score_samples`` (log p(x) in nats). ``alpha`` is the classification
    weight of Kingma et al. 2014, eq. 9 (default 0.1 N as in the paper). ``m1_latent_dim``/``m1_epochs``
    size M1 for ``method="m1+m2"``; ``hidden="auto"`` is (64,) for a data frame, (512, 256) otherwise.
    ``class_prior``: the generative model's p(y), "labelled" (the
    labelled rows' class shares, add-one smoothed; the same as uniform when every class has as many
    labels), "uniform" (the paper's) or "learned" (a weight of the model that starts at the labelled
    shares and is fitted with the rest by maximum likelihood, so the unlabelled rows inform it too; on
    three development draws of adult with 20 labels it lowered the error by 0.16-0.36 points against
    "labelled", and changed it by -0.04 / +0.10 with 100, so it is not the default). On adult's income
    (24% positive) with 20 labels and the (512, 256) network, "labelled" gave 20.8% test error against
    23.4% for "uniform" (mean of five label draws, ``benchmarks/results/few_labels_adult.md``).
    ``classifier``: q(y|x), "mlp" (the encoder's feature network, ``hidden``, then a linear layer),
    "linear" (a softmax regression on the input; for M1+M2 on M1's code, for M2 on a table on the
    encoded row), "wide" (M1+M2 on a data frame: a softmax regression on M1's code and the encoded row,
    missing cells at 0; the row's weights start at 0 and carry the penalty ``alpha / (2 wide_c)`` ||W||^2,
    which is how scikit-learn's ``LogisticRegression(C=wide_c)`` weighs its penalty against the
    cross-entropy, here the alpha-weighted labelled one; M2's VAE still models M1's code only) or "auto"
    (the default): "wide" for a data frame under M1+M2, "linear" under M2, "mlp" for arrays and images
    (see ``classifier_for``).
    """

    PARAMS = {
        "method": lambda n, v: checks.choice(n, v, METHODS),
        "latent_dim": lambda n, v: checks.integer(n, v, low=1),
        "m1_latent_dim": lambda n, v: checks.integer(n, v, low=1),
        "hidden": lambda n, v: v if v == "auto" else checks.widths(n, v), "channels": checks.widths,
        "epochs": checks.epochs, "steps": lambda n, v: checks.integer(n, v, low=1),
        "m1_epochs": lambda n, v: v if v is None else checks.epochs(n, v),
        "batch_size": lambda n, v: checks.integer(n, v, low=1),
        "lr": lambda n, v: checks.real(n, v, low=0.0, low_open=True),
        "alpha": lambda n, v: v if v is None else checks.real(n, v, low=0.0),
        "warmup_epochs": lambda n, v: checks.integer(n, v, low=0),
        "class_prior": lambda n, v: checks.choice(n, v, CLASS_PRIORS),
        "classifier": lambda n, v: checks.choice(n, v, CLASSIFIERS),
        "wide_c": lambda n, v: checks.real(n, v, low=0.0, low_open=True),
        "precision": lambda n, v: checks.choice(n, v, ("auto", "fp32", "bf16", "fp16")),
        "random_state": checks.seed,
    }

    def __init__(self, method: str = "m1+m2", latent_dim: int = 16, *, m1_latent_dim: int = 32,
                 likelihood: str = "auto", network: str = "auto", hidden: tuple[int, ...] | str = "auto",
                 channels: tuple[int, ...] = (32, 64), epochs: int | str = 100, steps: int = 2000,
                 m1_epochs: int | str | None = None, batch_size: int = 128, lr: float = 1e-3,
                 alpha: float | None = None, warmup_epochs: int = 0, class_prior: str = "labelled",
                 classifier: str = "auto", wide_c: float = 0.1, device: str = "auto",
                 precision: str = "auto", random_state: int | None = 0, verbose: int = 0):
        self.method, self.latent_dim, self.m1_latent_dim = method, latent_dim, m1_latent_dim
        self.likelihood, self.network, self.hidden, self.channels = likelihood, network, hidden, channels
        self.epochs, self.steps, self.m1_epochs, self.batch_size, self.lr = epochs, steps, m1_epochs, batch_size, lr
        self.alpha, self.warmup_epochs, self.device, self.precision = alpha, warmup_epochs, device, precision
        self.class_prior, self.classifier, self.wide_c = class_prior, classifier, wide_c
        self.random_state, self.verbose = random_state, verbose

    # -- preprocessing ---------------------------------------------------------------------------
    def _features(self, X) -> torch.Tensor:
        """What M2 sees: the (standardised) data, or E[z1|x] under M1, followed for a wide q(y|x) by the
        encoded row (missing cells at 0), which only the classifier reads."""
        self._check_fitted()
        x = to_model(self.inputs_, X)
        if self.m1_ is None:
            return x
        code = batched(lambda b: self.m1_.encode(b).mean, x, self._device())
        return wide_input(code, x) if self.model_.side_dim else code

    def _encode_labels(self, y, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim == 2 and 1 in y.shape:
            y = y.ravel()
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
        self._check_params()
        X = X if isinstance(X, pd.DataFrame) else check_array(X)  # a frame goes through the table stack
        codes = self._encode_labels(y, len(X))
        self.inputs_, _ = fit_inputs(X, likelihood=self.likelihood)
        inputs = self.inputs_
        network = network_for(inputs, self.network)
        seed = self._seed()
        data_config = ModelConfig(input_shape=inputs.model_input_shape, network=network,
                                  hidden=checks.widths("hidden", hidden_for(inputs, self.hidden)),
                                  channels=checks.widths("channels", self.channels), likelihood=inputs.likelihood,
                                  likelihood_options=likelihood_options(inputs),
                                  gaussian_scale=gaussian_scale(inputs))
        x = to_model(inputs, X)
        plan = LabelledUnlabelled(torch.from_numpy(codes))
        steps = plan.steps(len(x), int(self.batch_size))
        epochs = self.epochs if self.epochs != "auto" else max(1, -(-int(self.steps) // steps))
        train = {"batch_size": int(self.batch_size), "lr": self.lr, "seed": seed, "device": self.device,
                 "precision": self.precision, "progress": bool(self.verbose), **CONSTANT_LR}
        self.m1_, self.m1_config_ = None, None
        shares = class_shares(codes, len(self.classes_)) if self.class_prior != "uniform" else None
        m2_options = {} if shares is None else {"class_prior": shares}
        if self.class_prior == "learned":  # starts at the labelled shares, then trained with the model
            m2_options["learn_class_prior"] = True
        classifier = classifier_for(inputs, self.classifier, self.method)
        if classifier == "wide" and (inputs.kind != "table" or self.method != "m1+m2"):
            raise ValueError("classifier='wide' (q(y|x) on M1's code and the row) is for a data frame with "
                             "method='m1+m2'; use 'linear' or 'mlp' here.")
        if classifier != "mlp":
            m2_options["classifier"] = classifier
        alpha = 0.1 * len(codes) if self.alpha is None else float(self.alpha)
        if classifier == "wide":  # the row's weights penalised as LogisticRegression(C=wide_c) would be,
            # relative to the alpha-weighted labelled cross-entropy: alpha / (2 C) ||W||^2, per row of the data
            m2_options.update(side_dim=int(np.prod(inputs.model_input_shape)),
                              l2=alpha / (2 * float(self.wide_c)) / len(codes))
        torch.manual_seed(seed)
        with self._runtime():
            if self.method == "m1+m2":
                self.m1_config_ = ModelConfig(**{**data_config.__dict__, "latent_dim": int(self.m1_latent_dim)})
                self.m1_ = build_model(self.m1_config_)
                m1_epochs = self.m1_epochs or self.epochs
                fit(self.m1_, x, config=TrainConfig(
                    epochs=epochs_for(m1_epochs, int(self.steps), len(x), int(self.batch_size)), **train))
                self.m1_.eval()
                code = torch.stack(posterior_moments(self.m1_, x), 1)  # (N, 2, m1_latent_dim): loc and scale of q(z1|x)
                if classifier == "wide":  # the row after the code, with scale 0: every draw of z1 carries it unchanged
                    row = wide_input(torch.zeros(len(x), 0), x)
                    code = torch.cat([code, torch.stack([row, torch.zeros_like(row)], 1)], -1)
                x = code
                self.model_config_ = ModelConfig(family="m2", input_shape=(int(self.m1_latent_dim),),
                                                 latent_dim=int(self.latent_dim), hidden=data_config.hidden,
                                                 likelihood="gaussian", n_classes=len(self.classes_),
                                                 options=m2_options)
            else:
                self.model_config_ = ModelConfig(**{**data_config.__dict__, "family": "m2", "options": m2_options,
                                                    "latent_dim": int(self.latent_dim), "n_classes": len(self.classes_)})
            self.model_ = build_model(self.model_config_)
            y_codes = torch.from_numpy(codes)
            check_labels(y_codes, len(x), len(self.classes_))
            objective = functools.partial(m2_objective, alpha=alpha, labelled_fraction=float((codes >= 0).mean()))
            objective = m1_samples(objective) if self.m1_ is not None else objective
            cfg = TrainConfig(epochs=int(epochs), kl_schedule="linear" if self.warmup_epochs else "constant",
                              warmup_steps=int(self.warmup_epochs) * steps, **train)
            self.history_ = fit(self.model_, x, y=y_codes, config=cfg, objective=objective, plan=plan)
        self.model_.eval()
        return self

    # -- inference -------------------------------------------------------------------------------
    @property
    def n_features_in_(self) -> int:
        return int(np.prod(self.inputs_.input_shape))

    def predict_proba(self, X) -> np.ndarray:
        """q(y|x), (N, n_classes), columns in the order of ``classes_``."""
        with self._runtime():
            return batched(lambda b: self.model_.classify(b).probs, self._features(X), self._device()).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]

    def transform(self, X) -> np.ndarray:
        """Embeddings, deterministic: E[z1|x] under M1 for ``m1+m2``, (N, m1_latent_dim); for ``m2``,
        [q(y|x), sum_y q(y|x) E[z|x,y]], (N, n_classes + latent_dim): M2's z holds what the class does
        not (style), so the class probabilities carry the class information."""
        if self.m1_ is not None:
            with self._runtime():
                return self._features(X)[:, : self.m1_.latent_dim].numpy()
        m, K = self.model_, self.model_.n_classes

        def embed(b):
            probs = m.classify(b).probs.T  # (K, B)
            means = torch.stack([m.encode(b, torch.full((len(b),), k, device=b.device)).mean for k in range(K)])
            return torch.cat([probs.T, (probs.unsqueeze(-1) * means).sum(0)], -1)  # (B, K + L)
        with self._runtime():
            return batched(embed, self._features(X), self._device()).numpy()

    def sample(self, n_samples: int = 1, *, y=None, mean: bool = True, random_state: int | None = None) -> np.ndarray:
        """New data of class ``y`` (one label, or one per sample; default: y ~ p(y), the class prior):
        z ~ p(z), then E[x|y,z] (``mean=True``) or x ~ p(x|y,z); through M1's decoder for ``m1+m2``."""
        self._check_fitted()
        n = checks.integer("n_samples", n_samples, low=1)
        g = torch.Generator().manual_seed(0 if random_state is None else int(random_state))
        if y is None:
            codes = self.model_.sample_labels(n, generator=g)
        else:
            labels = np.broadcast_to(np.asarray(y, dtype=self.classes_.dtype), (n,))
            unknown = sorted(set(labels.tolist()) - set(self.classes_.tolist()))
            if unknown:
                raise ValueError(f"Unknown class {unknown[0]!r}; the model knows {self.classes_.tolist()}.")
            codes = torch.from_numpy(np.searchsorted(self.classes_, labels)).long()
        device = self._device()
        with torch.inference_mode(), self._runtime():
            z = torch.randn(n, self.model_.latent_dim, generator=g).to(device)
            px = self.model_.decode(z, codes.to(device))
            lik = self.model_.likelihood
            x = lik.mean(px) if mean or self.m1_ is not None else lik.sample(px)
            if self.m1_ is not None:
                px = self.m1_.decode(x)
                x = self.m1_.likelihood.mean(px) if mean else self.m1_.likelihood.sample(px)
        return from_model(self.inputs_, x)

    def score_samples(self, X, *, k: int = 1000) -> np.ndarray:
        """log p(x) per row in nats of X's units (higher is better), importance-weighted with ``k`` samples
        (Burda et al. 2015, eq. 8), the preprocessing's log-Jacobian included. ``m1+m2``: under M1, the
        model of x (M2 models M1's code z1, so its bound is not a density of x); ``m2``:
        log sum_y p(y) p(x|y) with p(y) the class prior. ``vaekit serve``'s /score and the export's score graph
        give the same number."""
        from vaekit.evaluate import class_marginal_log_likelihood, log_likelihood

        self._check_fitted()
        k = checks.integer("k", k, low=1)
        x = to_model(self.inputs_, X)
        device = self._device()
        with self._runtime(), torch.inference_mode():
            if self.m1_ is not None:
                ll = log_likelihood(self.m1_, x.to(device), k=k)
            else:
                ll = class_marginal_log_likelihood(self.model_, x.to(device), k=k)
        return ll.double().numpy() + log_jacobian_rows(self.inputs_, x)

    def evaluate(self, X, y=None, *, k: int = 1000) -> dict:
        """M2's bounds on the data, in nats per example of M2's input (for ``m1+m2``: M1's latent means):
        log p(x) = log sum_y p(y) p(x|y) with each p(x|y) importance-weighted (k samples), the
        unlabelled bound U(x) (Kingma et al. 2014, eq. 7), and the accuracy when labels ``y`` are given."""
        from vaekit.apps.semisupervised.objective import unlabelled_bound
        from vaekit.evaluate import class_marginal_log_likelihood

        self._check_fitted()
        k = checks.integer("k", k, low=1)
        x = self._features(X)
        device, m2 = self._device(), self.model_
        with self._runtime(), torch.inference_mode():
            log_px = class_marginal_log_likelihood(m2, m2.data_part(x).to(device), k=k)
            torch.manual_seed(0)
            u = torch.cat([unlabelled_bound(m2, m2.data_part(xb).to(device), m2.classify(xb.to(device)))[0].cpu()
                           for xb in x.split(1024)])
        record = {"n_examples": len(x), "k": k, "log_likelihood": float(log_px.mean()),
                  "unlabelled_bound": float(u.double().mean()), "units": "nats per example of M2's input"}
        if y is not None:
            record["accuracy"] = float(np.mean(self.predict(X) == np.asarray(y).ravel()))
        return record

    # -- persistence -----------------------------------------------------------------------------
    def _fitted_state(self) -> dict:
        return {"inputs": self.inputs_.to_dict(), "classes": self.classes_.tolist(),
                "label_column": getattr(self, "label_column_", None)}

    def _restore(self, state: dict) -> None:
        self.classes_ = np.asarray(state["classes"])
        self.label_column_ = state.get("label_column")
        if "inputs" in state:
            self.inputs_ = Inputs.from_dict(state["inputs"])
        else:  # format 1
            shape = tuple(state["input_shape"])
            flat = lambda v: None if v is None else np.asarray(v).ravel().tolist()  # noqa: E731
            self.inputs_ = Inputs("image" if len(shape) >= 2 else "array", shape, tuple(self.model_config_.input_shape),
                                  state["likelihood"], flat(state.get("mean")), flat(state.get("scale")))
        self.m1_ = self.m1_config_ = None

    def _save_parts(self, path: Path) -> None:
        if self.m1_ is not None:
            save_model(self.m1_, self.m1_config_, path / "m1", extra={"role": "M1 of a vaekit M1+M2 model"})

    def _load_parts(self, path: Path, device: str) -> None:
        if self.method == "m1+m2":
            self.m1_, self.m1_config_, _ = load_model(path / "m1", device=resolve_device(device))
            self.inputs_.model_input_shape = tuple(self.m1_config_.input_shape)


__all__ = ["SemiSupervisedClassifier"]
