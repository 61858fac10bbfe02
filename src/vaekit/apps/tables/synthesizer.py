"""``TabularSynthesizer``: synthetic rows for a mixed-type table from a VAE.

    syn = TabularSynthesizer(random_state=0).fit(frame)
    fake = syn.sample(10_000)                                   # same columns, dtypes, categories, ranges
    rich = syn.sample(1_000, conditions={"income": ">50K"})     # only rows with that value
    syn.score_samples(frame)                                    # log p(row) in nats, higher is better

The model is the core VAE (``build_model``, ``train.fit``) over the table stack of
``vaekit.data.tabular`` with the synthesizer's options: every numeric column is a mixture of
``components`` Gaussians predicted by the decoder (multi-modal and skewed columns), discrete for
integer columns and truncated to the observed range; categorical, boolean and datetime columns keep
their type; each column with missing cells gets a modelled missing indicator, so the missing pattern is
reproduced. ID-like columns (every value unique text) are left out and refilled with fresh IDs.
Training weights the KL term by ``beta`` (0.5); afterwards p(z) is a Gaussian mixture fitted to the
training rows' codes (``prior="fitted"``), the one prior that sampling and ``score_samples`` use.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from vaekit import checks
from vaekit.apps.tables import frames
from vaekit.apps.tables.conditions import condition_row, conditional_latents
from vaekit.config import CONSTANT_LR, ModelConfig, TrainConfig, build_model
from vaekit.data import tabular
from vaekit.estimators.base import Estimator
from vaekit.evaluate import log_likelihood, posterior_moments
from vaekit.likelihoods.base import MIN_SCALE
from vaekit.priors import MixtureOfGaussians
from vaekit.runtime import BF16_FASTER_WORK
from vaekit.train import fit, split_validation

log = logging.getLogger("vaekit")

PARAMS = {
    "latent_dim": lambda n, v: checks.integer(n, v, low=1),
    "hidden": checks.widths,
    "components": lambda n, v: checks.integer(n, v, low=1, high=64),
    "epochs": checks.epochs,
    "steps": lambda n, v: checks.integer(n, v, low=1),
    "max_seconds": lambda n, v: None if v is None else checks.real(n, v, low=0, low_open=True),
    "batch_size": lambda n, v: checks.integer(n, v, low=1),
    "lr": lambda n, v: checks.real(n, v, low=0, low_open=True),
    "beta": lambda n, v: checks.real(n, v, low=0, low_open=True),
    "min_scale": lambda n, v: checks.real(n, v, low=0),
    "k": lambda n, v: checks.integer(n, v, low=1),
    "prior": lambda n, v: checks.choice(n, v, ("normal", "mixture", "fitted")),
    "prior_components": lambda n, v: checks.integer(n, v, low=1),
    "patience": lambda n, v: checks.integer(n, v, low=0),
    "validation_fraction": lambda n, v: checks.real(n, v, low=0.0, high=0.5, low_open=True, high_open=True),
    "precision": lambda n, v: checks.choice(n, v, ("auto", "fp32", "bf16", "fp16")),
    "random_state": checks.seed,
}


AUTO_PASSES, LEAST_STEPS = 100, 300  # epochs="auto": 100 passes over the rows, at least 300 steps


def auto_epochs(n: int, batch_size: int, *, most: int, passes: int = AUTO_PASSES, least: int = LEAST_STEPS) -> int:
    """The epochs of ``epochs="auto"``: ``passes`` passes over ``n`` rows, but at least ``least`` and at
    most ``most`` gradient steps (a large table stops at ``most`` steps, a small one is not trained for
    hundreds of passes)."""
    per_epoch = math.ceil(n / batch_size)
    return max(1, math.ceil(min(most, max(least, passes * per_epoch)) / per_epoch))


class TimeLimit:
    """A training callback that stops after ``seconds`` of training (checked after every epoch)."""

    def __init__(self, seconds: float | None):
        self.seconds, self.start = seconds, time.perf_counter()

    def __call__(self, record: dict, model) -> bool:
        return self.seconds is not None and time.perf_counter() - self.start > self.seconds


class TabularSynthesizer(Estimator):
    """A VAE that generates rows like the training table's (mixed types, missing cells).

    ``components``: mixture components per numeric column (1 = a single truncated Gaussian).
    ``epochs="auto"`` trains for 100 passes over the rows, at least 300 and at most ``steps`` gradient
    steps (``auto_epochs``: a table above 10,000 rows stops at ``steps``, a 3,000-row table gets 600).
    That and ``components=5`` were chosen on the seven development tables below over seven settings
    (``benchmarks/results/synthetic_tables_schedule.md``, two seeds each): the fastest setting within one
    standard error of the best mean of (F1 share + quality) / 2. Against the earlier defaults (2,000 steps
    for every table, 10 components) the mean F1 share went from 0.900 to 0.906 and the mean quality from
    0.933 to 0.930, in a fifth of the total fit time. ``max_seconds`` stops training after that many seconds
    (checked per epoch). ``patience`` > 0 holds out ``validation_fraction`` of the rows and stops when
    their ELBO has not improved for that many epochs, keeping the best epoch's weights; it is off by
    default because on the same tables (bf16) it lowered the mean F1 share (patience 10: 0.894, 20: 0.904,
    against 0.929 without) and saved little or no time (121 and 146 s in all, against 132 s).
    ``min_scale`` floors every component's standard deviation
    (standardised units). ``k``: importance samples per row in ``score_samples``.
    ``prior``: "fitted" (default: trained with N(0, I), then p(z) is replaced by a diagonal Gaussian
    mixture of ``prior_components`` components fitted to the training rows' latent codes, one draw of
    z ~ q(z|x) per row: the aggregate posterior the decoder learned from, so samples come from where
    the data's codes are; ``sample``, conditions and ``score_samples`` all use it), "normal" (N(0, I))
    or "mixture" (a mixture learned jointly with the model; on seven development tables it raised the
    ML-efficacy F1 on four and lost the rare class on one). ``beta`` weights the KL term in training.
    The defaults (beta 0.5, "fitted", 50 components) were chosen on those seven tables (dev splits,
    never the benchmark's test file) over beta 0.5 / 0.75 / 1 and 0 / 10 / 50 / 100 fitted components,
    two seeds per fit for the leading configs (``benchmarks/results/synthetic_tables_dev.md``): against
    beta 1 with N(0, I) they raised the mean ML-efficacy F1 (as a share of the real data's) from 0.86 to
    0.93 at a slightly lower mean quality score (0.930 against 0.936). Chosen with each table held out
    in turn, the same config wins on every split (held-out F1 share 0.925, quality 0.930). Beta 0.75
    with 50 components scores a higher quality (0.938) and a lower F1 share (0.909); the differences
    between the leading configs are within the seed noise.
    ``precision="auto"`` trains in bf16 on a CPU with bf16 hardware (AVX512-BF16 or AMX) wherever bf16
    steps are faster (``runtime.BF16_FASTER_WORK``; the default network on adult is there), not only
    above the library-wide ``BF16_MIN_WORK``: on the seven development tables bf16 training kept the
    quality of float32 training (``synthetic_tables_schedule.md``, each table against its float32 twin:
    F1 share +0.024 +- 0.026, quality +0.005 +- 0.007, 7.7 +- 2.9 s less per fit), though not on every
    table (adult's own development split: F1 0.642 against 0.663, two seeds each); float32 elsewhere, or
    always with ``precision="fp32"``.
    ``id_columns``: "auto" (all-unique text columns, with a warning) or a list of column names.
    ``categorical``: numeric columns to treat as categories (e.g. codes).
    """

    PARAMS = PARAMS

    def __init__(self, *, latent_dim: int = 32, hidden: tuple[int, ...] = (256, 256), components: int = 5,
                 epochs: int | str = "auto", steps: int = 2000, max_seconds: float | None = None,
                 batch_size: int = 500, lr: float = 2e-3, beta: float = 0.5, min_scale: float = 1e-3, k: int = 100,
                 prior: str = "fitted", prior_components: int = 50, categorical: tuple = (),
                 id_columns: str | tuple = "auto", patience: int = 0, validation_fraction: float = 0.1,
                 device: str = "cpu", precision: str = "auto", random_state: int | None = 0, verbose: int = 0):
        self.latent_dim, self.hidden, self.components = latent_dim, hidden, components
        self.epochs, self.steps, self.max_seconds, self.batch_size, self.lr = epochs, steps, max_seconds, batch_size, lr
        self.beta, self.min_scale, self.k = beta, min_scale, k
        self.prior, self.prior_components = prior, prior_components
        self.categorical, self.id_columns = categorical, id_columns
        self.patience, self.validation_fraction = patience, validation_fraction
        self.device, self.precision, self.random_state, self.verbose = device, precision, random_state, verbose

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Learn the table ``X`` (a pandas DataFrame). ``y`` is ignored (a class column is a column)."""
        self._check_params()
        t0 = time.perf_counter()
        frame = frames.check_frame(X, name="X")
        self.columns_, self.dtypes_ = list(frame.columns), {c: str(t) for c, t in frame.dtypes.items()}
        self.id_columns_ = frames.find_ids(frame, self.id_columns, name="X")
        data = frame.drop(columns=self.id_columns_)
        if data.shape[1] == 0:
            raise ValueError("Every column of X is an ID column; pass at least one column to model.")
        frames.all_missing(data, name="X")
        if all(data[c].isna().all() for c in data.columns):
            raise ValueError("Every column of X is entirely missing; there is nothing to model.")
        self.table_ = tabular.fit_table(data, categorical=self.categorical, name="X", components=int(self.components),
                                        missing="model", keep_types=True)
        rows = tabular.encode_table(data, self.table_, name="X")
        seed = self._seed()
        fit_rows, val_rows = rows, None
        if int(self.patience) > 0:  # early stopping on a held-out part of the rows
            fit_rows, val_rows = split_validation(rows, float(self.validation_fraction), int(self.patience), seed)
        x = torch.from_numpy(rows)
        x_fit, x_val = torch.from_numpy(fit_rows), None if val_rows is None else torch.from_numpy(val_rows)
        batch = min(int(self.batch_size), len(x_fit))
        self.model_config_ = ModelConfig(
            family="vae", input_shape=(x.shape[1],), latent_dim=int(self.latent_dim),
            hidden=checks.widths("hidden", self.hidden), likelihood="table",
            prior="normal" if self.prior == "fitted" else self.prior,
            prior_components=int(self.prior_components),
            likelihood_options={"columns": tabular.likelihood_columns(self.table_), "min_scale": float(self.min_scale)})
        torch.manual_seed(seed)
        self.model_ = build_model(self.model_config_)
        init_output_bias(self.model_, fit_rows, self.table_)
        epochs = auto_epochs(len(x_fit), batch, most=int(self.steps)) if self.epochs == "auto" else int(self.epochs)
        cfg = TrainConfig(epochs=epochs, batch_size=batch, patience=int(self.patience) if x_val is not None else 0,
                          lr=float(self.lr), beta=float(self.beta), seed=seed, device=self.device,
                          precision=self.precision, bf16_min_work=BF16_FASTER_WORK, progress=bool(self.verbose),
                          **CONSTANT_LR)
        with self._runtime():
            self.history_ = fit(self.model_, x_fit, x_val=x_val, config=cfg, callbacks=[TimeLimit(self.max_seconds)])
        self.model_.eval()
        if self.prior == "fitted":
            self.model_.prior = fit_latent_mixture(self.model_, x, int(self.prior_components), seed)
            self.model_config_ = replace(self.model_config_, prior="mixture",
                                         prior_components=self.model_.prior.loc.shape[0])
        self.fit_seconds_ = time.perf_counter() - t0
        if self.verbose:
            print(f"vaekit.TabularSynthesizer: {len(x)} rows, {len(self.columns_)} columns "
                  f"({len(self.id_columns_)} ID), {len(self.history_.records)} epochs in {self.fit_seconds_:.1f} s")
        return self

    # -- generation ------------------------------------------------------------------------------
    @property
    def n_features_in_(self) -> int:
        return len(self.columns_)

    def sample(self, n_samples: int = 1, *, conditions: dict | None = None, random_state: int | None = None,
               pool: int = 50) -> pd.DataFrame:
        """``n_samples`` new rows as a data frame with the training columns and dtypes. ``conditions``
        ({column: value}) gives only rows with those values (see ``vaekit.apps.tables.conditions``;
        ``pool`` candidates per row). The same ``random_state`` gives the same rows."""
        self._check_fitted()
        n = checks.integer("n_samples", n_samples, low=1)
        pool = checks.integer("pool", pool, low=1)
        target = keep = None
        if conditions is not None:
            target, keep = condition_row(conditions, self.table_, self.id_columns_)
        seed = int(random_state) if random_state is not None else int(np.random.randint(2**31))
        chunk = max(1, 65536 // (pool if target is not None else 1))
        parts = []
        with torch.inference_mode(), torch.random.fork_rng(devices=[]), self._runtime():
            torch.manual_seed(seed)
            for start in range(0, n, chunk):
                m = min(chunk, n - start)
                if target is None:
                    z = self.model_.sample_latent(m)
                else:
                    z = conditional_latents(self.model_, torch.from_numpy(target), m, pool=pool)
                x = self.model_.likelihood.sample(self.model_.decode(z.to(self._device()))).float().cpu().numpy()
                if keep is not None:
                    x[:, keep] = target[0, keep]
                parts.append(x)
        rows = tabular.decode_table(np.concatenate(parts), self.table_)
        rng = np.random.default_rng(seed)
        for c in self.id_columns_:
            rows[c] = frames.fresh_ids(n, rng)
        return frames.restore(rows, self.dtypes_, self.columns_)

    # -- density ---------------------------------------------------------------------------------
    def _model_inputs(self, X):
        self._check_fitted()
        if not isinstance(X, pd.DataFrame):
            raise ValueError(f"X must be a pandas DataFrame with the training columns, got {type(X).__name__}.")
        data = X.set_axis([str(c) for c in X.columns], axis=1).drop(columns=self.id_columns_, errors="ignore")
        x = tabular.encode_table(data, self.table_, name="X")
        return torch.from_numpy(x), tabular.log_jacobian_rows(x, self.table_)

    def score_samples(self, X) -> np.ndarray:
        """log p(row) per row in nats (higher is better): importance-weighted with ``k`` samples of z
        (Burda et al. 2015), each numeric column's mixture marginalised exactly. Units: a density per
        unit of each continuous column (per day or second for dates), a probability for integer,
        categorical and boolean cells and for the missing pattern; ID columns are not scored."""
        x, shift = self._model_inputs(X)
        with self._runtime():
            ll = log_likelihood(self.model_, x.to(self._device()), k=int(self.k))
        return ll.double().numpy() + shift

    def score(self, X, y=None) -> float:
        """Mean log p(row) in nats."""
        return float(np.mean(self.score_samples(X)))

    # -- persistence -----------------------------------------------------------------------------
    def _fitted_state(self) -> dict:
        return {"table": self.table_, "columns": self.columns_, "dtypes": self.dtypes_,
                "id_columns": self.id_columns_, "fit_seconds": self.fit_seconds_}

    def _restore(self, state: dict) -> None:
        self.table_, self.columns_, self.dtypes_ = state["table"], state["columns"], state["dtypes"]
        self.id_columns_, self.fit_seconds_ = state["id_columns"], state.get("fit_seconds", float("nan"))


@torch.no_grad()
def init_output_bias(model: nn.Module, x: np.ndarray, spec: dict) -> None:
    """Start the decoder at the marginals: categorical logits at log frequencies; for a mixture column,
    atom weights at their shares, components at the quantiles of the other values with equal weights
    and scales about the gap between neighbouring quantiles."""
    last = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)][-1]
    lay = model.likelihood.layout
    bias, i, j = last.bias, 0, 0
    K = lay.components
    for c in spec["columns"]:
        size = tabular.block_size(c)
        block = x[:, i: i + size]
        if c["kind"] == "numeric" and c.get("components"):
            v = block[:, 0][np.isfinite(block[:, 0])].astype(np.float64)
            at = lay.width + lay.mix_size * j
            atoms = np.asarray(tabular.mixture_column(c)["atoms"])
            hit = np.isclose(v[:, None], atoms[None, :], rtol=0, atol=1e-6).any(1) if len(atoms) else np.zeros(len(v), bool)
            rest = v[~hit] if (~hit).sum() >= K else v
            q = np.quantile(rest, (np.arange(K) + 0.5) / K) if len(rest) else np.zeros(K)
            gaps = np.diff(np.concatenate([[q[0] - 0.1], q, [q[-1] + 0.1]]))
            scales = np.maximum(0.5 * (gaps[:-1] + gaps[1:]), 1e-2)
            shares = [(np.abs(v - a) < 1e-6).mean() for a in atoms]
            bias[at: at + K] = math.log(max(1.0 - sum(shares), 1e-3) / K)
            bias[at + K: at + 2 * K] = torch.as_tensor(q, dtype=bias.dtype)
            bias[at + 2 * K: at + 3 * K] = torch.as_tensor(np.log(np.expm1(scales)), dtype=bias.dtype)  # softplus^-1
            bias[at + 3 * K: at + 3 * K + len(atoms)] = torch.as_tensor(np.log(np.maximum(shares, 1e-4)), dtype=bias.dtype)
            j += 1
        elif c["kind"] != "numeric":
            seen = block[np.isfinite(block).all(1)]
            freq = (seen.sum(0) + 0.5) / (len(seen) + 0.5 * size) if len(seen) else np.full(size, 1.0 / size)
            bias[i: i + size] = torch.as_tensor(np.log(freq), dtype=bias.dtype)
        i += size


@torch.no_grad()
def fit_latent_mixture(model: nn.Module, x: torch.Tensor, n_components: int, seed: int) -> MixtureOfGaussians:
    """A diagonal Gaussian mixture fitted (scikit-learn, EM) to one draw z ~ q(z|x) per training row:
    an estimate of the aggregate posterior, the distribution the decoder was trained on, to replace
    N(0, I) as p(z) (Ghosh et al. 2020, ex-post density estimation; Dai & Wipf 2019, two-stage VAE)."""
    from sklearn.mixture import GaussianMixture

    g = torch.Generator().manual_seed(seed)
    loc, scale = posterior_moments(model, x, batch_size=8192)
    # the noise drawn per block of 8192 rows, as the draws were first made
    eps = torch.cat([torch.randn(part.shape, generator=g) for part in loc.split(8192)])
    z = (loc + scale * eps).double().numpy()
    k = max(1, min(n_components, len(z) // 2))
    gm = GaussianMixture(k, covariance_type="diag", reg_covar=1e-4, random_state=seed).fit(z)
    prior = MixtureOfGaussians(z.shape[1], n_components=k)
    scale = torch.as_tensor(np.sqrt(gm.covariances_) - MIN_SCALE, dtype=torch.float32).clamp(min=1e-6)
    prior.loc.copy_(torch.as_tensor(gm.means_, dtype=torch.float32))
    prior.raw_scale.copy_(scale + torch.log(-torch.expm1(-scale)))  # softplus^-1
    prior.logits.copy_(torch.as_tensor(np.log(gm.weights_), dtype=torch.float32))
    return prior.to(next(model.parameters()).device)
