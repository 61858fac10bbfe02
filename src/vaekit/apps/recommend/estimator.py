"""``vaekit.Recommender``: collaborative filtering with Mult-VAE and its relatives.

    rec = Recommender().fit(ratings, user="user_id", item="item_id", min_rating=4)  # or a scipy.sparse matrix
    items, scores = rec.recommend(histories, n=10)   # seen items excluded; original item labels
    rec.predict(histories)       # (n_rows, n_items) log-probabilities (nats) of the next click per item
    rec.score_samples(histories) # importance-weighted log p(x) per user, nats (multinomial likelihood)

Histories are rows over the fitted items (sparse or dense) or a frame of (user, item[, rating]) rows;
a frame's users come out in order of first appearance (``history_matrix`` gives them). Models:
``"vae"`` (Mult-VAE with RecVAE's encoder (Shenbin et al. 2020): dense connections, LayerNorm,
SiLU; the output bias starts at log item popularity), ``"mult-vae"`` (the paper's recipe),
``"mult-dae"`` (denoising, no KL term), ``"recvae"`` (RecVAE: composite prior, alternating
encoder/decoder passes, per-user KL weight ``gamma * n_u``, linear decoder;
``vaekit.apps.recommend.composite``), or several names joined by ``+``, which the ``n_models``
ensemble members take in turn. The default, ``"vae+recvae"`` with ``n_models=5`` (three "vae" and
two "recvae" members, their distributions mixed), was chosen on development splits of MovieLens 100K
that are not the benchmark's (NDCG@100 0.4617 against 0.4587 for five "vae", 0.4591 for three
"recvae" and 0.4589 for EASE; on half the users 0.4317, 0.4286, 0.4218 and 0.4185; see
``benchmarks/results/recommend.md``). With ``fit(..., item_features=frame)`` (one row per item),
items that nobody clicked get scores from their content (``vaekit.apps.recommend.hybrid``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from vaekit.apps.recommend.batches import sparse_loader
from vaekit.apps.recommend.data import Columns, check_matrix, clicks_from_frame, frame_to_matrix
from vaekit.apps.recommend.ensemble import load_members, member_kinds, member_seeds, mixture, save_members
from vaekit.apps.recommend.metrics import exclude, ndcg_at_k, top_k
from vaekit.apps.recommend.model import RecModelConfig, build_family, model_config
from vaekit.apps.recommend.splits import FoldIn, fold_in
from vaekit.apps.recommend.training import curve, model_scores, train
from vaekit.config import TrainConfig
from vaekit.estimators.base import Estimator
from vaekit.evaluate import log_likelihood, posterior_means
from vaekit.runtime import resolve_device


@dataclass(frozen=True)
class Recipe:
    """What a model name means."""

    stochastic: bool  # False: Mult-DAE's point encoder, no KL term
    encoder: str  # "dense" (RecVAE's body) or "mlp" (the paper's)
    objective: str  # "elbo", "dae" or "composite" (RecVAE's prior, alternating updates)
    decoder_hidden: tuple[int, ...] | None = None  # None mirrors the encoder; () is linear
    popularity_bias: bool = False  # the output bias starts at log popularity


MODELS = {"vae": Recipe(True, "dense", "elbo", popularity_bias=True),
          "mult-vae": Recipe(True, "mlp", "elbo"), "mult-dae": Recipe(False, "mlp", "dae"),
          "recvae": Recipe(True, "dense", "composite", decoder_hidden=())}
DEFAULT_MODEL = "vae+recvae"


def model_names(model) -> list[str]:
    """The recipe names in ``model`` ("vae" or several joined by "+"); an unknown one is a clear error."""
    names = str(model).split("+") if isinstance(model, str) else []
    if not names or any(name not in MODELS for name in names):
        raise ValueError(f"Unknown model {model!r}; choose one of {', '.join(MODELS)}, or several joined by '+' "
                         f"(e.g. {DEFAULT_MODEL!r}) for an ensemble whose members take them in turn.")
    return names


class Recommender(Estimator):
    """Top-n recommendation from click histories with a multinomial VAE (Liang et al. 2018).

    The encoder sees the L2-normalised history with input ``dropout``; the KL weight rises linearly
    from 0 to ``beta_cap`` over ``anneal_fraction`` of the training steps; the weights of the epoch
    with the best NDCG@100 on validation users (``X_val``, or ``validation_fraction`` of the users,
    each showing 80% of their clicks) are kept. Training reads sparse batches of ``batch_size`` users.
    ``popularity_bias=None`` takes the model's recipe (``MODELS``). For
    ``model="recvae"`` an epoch is ``passes`` = (encoder passes, decoder passes) over the users and
    the KL weight of user u is ``gamma * n_u`` from the first step (``beta_cap`` and
    ``anneal_fraction`` do not apply). ``n_models`` > 1 trains that many members with seeds
    ``random_state + m`` on the same data and validation users (member m is the m-th name of
    ``model``, the names taken in turn) and predicts with the mixture of their distributions
    (``vaekit.apps.recommend.ensemble``); ``model_`` is member 0.
    """

    def __init__(self, *, model: str = DEFAULT_MODEL, latent_dim: int = 200, hidden: tuple[int, ...] = (600,),
                 dropout: float = 0.5, beta_cap: float = 0.2, gamma: float = 0.005, passes: tuple[int, int] = (3, 1),
                 popularity_bias: bool | None = None, n_models: int = 5, anneal_fraction: float = 0.8, epochs: int = 200,
                 batch_size: int = 500, lr: float = 1e-3, weight_decay: float = 0.0, patience: int = 50,
                 validation_fraction: float = 0.1, user: str = "user", item: str = "item",
                 rating: str | None = "rating", min_rating: float | None = None, content_dim: int = 32,
                 k: int = 100, device: str = "auto", precision: str = "auto", random_state: int | None = 0,
                 verbose: int = 0):
        self.model, self.latent_dim, self.hidden, self.dropout = model, latent_dim, hidden, dropout
        self.gamma, self.passes, self.popularity_bias, self.n_models = gamma, passes, popularity_bias, n_models
        self.beta_cap, self.anneal_fraction, self.epochs, self.batch_size = beta_cap, anneal_fraction, epochs, batch_size
        self.lr, self.weight_decay, self.patience, self.validation_fraction = lr, weight_decay, patience, validation_fraction
        self.user, self.item, self.rating, self.min_rating = user, item, rating, min_rating
        self.content_dim, self.k, self.device, self.precision = content_dim, k, device, precision
        self.random_state, self.verbose = random_state, verbose

    # -- input -----------------------------------------------------------------------------------
    def _columns(self) -> Columns:
        return Columns(self.user, self.item, self.rating)

    def history_matrix(self, X, *, name: str = "X") -> tuple[sp.csr_matrix, list | None]:
        """Histories as CSR rows over the fitted items, and the user labels when X is a frame."""
        self._check_fitted()
        if isinstance(X, pd.DataFrame):
            pairs = clicks_from_frame(X, self._columns(), min_rating=self.min_rating, name=name)
            M, users, _ = frame_to_matrix(pairs, self._columns(), self.items_, name=name)
            return M, users
        M = check_matrix(X, name=name)
        if M.shape[1] not in (self.n_warm_, self.n_items_):
            check_matrix(M, name=name, n_items=self.n_items_)  # raises: the column count does not match
        if M.shape[1] < self.n_items_:  # rows over the clicked items only: no history on the others
            M = sp.hstack([M, sp.csr_matrix((M.shape[0], self.n_items_ - M.shape[1]), dtype=M.dtype)]).tocsr()
        return M, None

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, X, y=None, *, X_val=None, item_features: pd.DataFrame | None = None):
        """Fit on a users x items matrix (0/1 or counts; sparse or dense) or a frame of interactions.
        ``X_val``: validation users (same form), split 80/20 into fold-in and held-out items; by
        default ``validation_fraction`` of X's users are held out for model selection.
        ``item_features``: a frame with an ``item`` column and content columns (genres, year, title);
        items in it that nobody clicked join the catalogue, scored from their content (hybrid)."""
        names = model_names(self.model)
        if isinstance(self.n_models, bool) or not isinstance(self.n_models, (int, np.integer)) or self.n_models < 1:
            raise ValueError(f"n_models must be a whole number >= 1, got {self.n_models!r}.")
        seed = self._seed()
        rng = np.random.default_rng(seed)
        if isinstance(X, pd.DataFrame):
            pairs = clicks_from_frame(X, self._columns(), min_rating=self.min_rating)
            if len(pairs) == 0:
                raise ValueError(f"X has no interactions with {self.rating} >= {self.min_rating}; lower min_rating.")
            M, _, self.items_ = frame_to_matrix(pairs, self._columns())
        else:
            M = check_matrix(X)
            self.items_ = list(range(M.shape[1]))
        if M.nnz == 0:
            raise ValueError("X has no interactions (every entry is 0); pass at least one click.")
        M = M[np.asarray(M.sum(1)).ravel() > 0]  # users without clicks teach nothing
        val = self._validation(M, X_val, rng)
        if X_val is None and val is not None:
            M = M[np.setdiff1d(np.arange(M.shape[0]), val.users)]
        self.n_items_ = self.n_warm_ = len(self.items_)
        self.item_popularity_ = np.asarray(M.sum(0)).ravel().astype(np.float64)
        self.models_, self.histories_ = [], []
        n = int(self.n_models)
        for kind, member_seed in zip(member_kinds(names, n), member_seeds(seed, n)):
            recipe = MODELS[kind]
            objective = recipe.objective
            config = model_config(RecModelConfig(
                n_items=self.n_items_, latent_dim=self.latent_dim, hidden=tuple(self.hidden), dropout=self.dropout,
                stochastic=recipe.stochastic, encoder=recipe.encoder, decoder_hidden=recipe.decoder_hidden))
            composite = objective == "composite"  # KL weight gamma * n_u from the start: no cap, no annealing
            beta = (1.0 if composite else self.beta_cap) if recipe.stochastic else 0.0
            torch.manual_seed(member_seed)
            model = build_family(config)
            if recipe.popularity_bias if self.popularity_bias is None else self.popularity_bias:
                init_popularity_bias(model, self.item_popularity_)
            cfg = TrainConfig(epochs=int(self.epochs), batch_size=self.batch_size, lr=self.lr,
                              weight_decay=self.weight_decay, beta=beta, seed=member_seed,
                              device=self.device, precision=self.precision, progress=bool(self.verbose))
            history, callback = train(model, M, val=val, config=cfg, objective=objective,
                                      anneal_fraction=0.0 if composite else self.anneal_fraction,
                                      patience=self.patience, gamma=self.gamma, passes=tuple(self.passes))
            self.models_.append(model)
            self.histories_.append(history)
        self.model_, self.history_, self.model_config_ = self.models_[0], self.histories_[0], self.member_configs_[0]
        self.curve_ = curve(self.history_)  # member 0's
        self.val_ndcg_ = None if callback is None else val_ndcg(self._mixture_scores(val.history), val)
        self.content_ = None
        if item_features is not None:
            from vaekit.apps.recommend.hybrid import fit_hybrid

            fit_hybrid(self, M, item_features)
        return self

    def _validation(self, M: sp.csr_matrix, X_val, rng) -> FoldIn | None:
        if X_val is not None:
            if isinstance(X_val, FoldIn):
                return X_val
            V, _ = self.history_matrix(X_val, name="X_val")
            return fold_in(V, rng=rng)
        n_val = round(self.validation_fraction * M.shape[0])
        if self.validation_fraction <= 0 or n_val < 5 or M.shape[0] - n_val < 5:
            return None
        users = np.sort(rng.choice(M.shape[0], size=n_val, replace=False))
        return fold_in(M[users], rng=rng, users=users)

    # -- inference -------------------------------------------------------------------------------
    def predict(self, X) -> np.ndarray:
        """Scores (n_rows, n_items): log-probability in nats that a user's next click is each item,
        log softmax of the decoder at E_q[z|x]. Rows without a history get the log popularity share
        (a stated fallback, with a warning)."""
        M, _ = self.history_matrix(X)
        return self._scores(M)

    def _scores(self, M: sp.csr_matrix) -> np.ndarray:
        if self.content_ is not None:
            from vaekit.apps.recommend.hybrid import hybrid_scores

            scores = hybrid_scores(self, M)
        else:
            scores = self._mixture_scores(M)
        empty = np.asarray(M.sum(1)).ravel() == 0
        if empty.any():
            warnings.warn(f"{int(empty.sum())} row(s) have no known history; they get the most popular items.",
                          stacklevel=3)
            pop = np.concatenate([self.item_popularity_, np.zeros(scores.shape[1] - len(self.item_popularity_))])
            scores[empty] = np.log((pop + 0.5) / (pop + 0.5).sum())
        return scores

    def _mixture_scores(self, M: sp.csr_matrix) -> np.ndarray:
        return mixture([model_scores(model, M) for model in self.models_])

    def recommend(self, X, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best items per row that are not in its history: (item_ids, scores), each
        (n_rows, n), best first; item ids are the fitted labels, scores as in ``predict``."""
        if int(n) < 1:
            raise ValueError(f"n must be at least 1, got {n}.")
        M, _ = self.history_matrix(X)
        s = exclude(self._scores(M), M)
        top = top_k(s, int(n))
        labels = np.asarray(self.items_, dtype=object)
        ids = labels[top]
        if all(isinstance(v, int) for v in labels):
            ids = ids.astype(np.int64)
        return ids, np.take_along_axis(s, top, 1)

    def transform(self, X) -> np.ndarray:
        """User embeddings E_q[z|x], (n_rows, latent_dim), of member 0 (the members' latent spaces are
        not aligned). Deterministic."""
        M, _ = self.history_matrix(X)
        return posterior_means(self.model_, sparse_loader(M[:, : self.n_warm_], batch_size=1024)).numpy()

    def score_samples(self, X) -> np.ndarray:
        """log p(x) per user in nats: the importance-weighted estimate with ``k`` samples of z under
        the multinomial likelihood (multinomial coefficient included; a history's order is not
        modelled); for an ensemble, the mixture's log (1/M) sum_m p_m(x). Mult-DAE has no latent
        density and raises."""
        self._check_fitted()
        if not self.has_density_:
            raise ValueError("Mult-DAE is not a density model (no prior or posterior); use model='vae' for log p(x).")
        M, _ = self.history_matrix(X)
        loader = sparse_loader(M[:, : self.n_warm_], batch_size=max(1, 1024 // max(1, self.k)))  # bounded memory
        return mixture([log_likelihood(model, loader, k=self.k).double().numpy() for model in self.models_])

    @property
    def member_configs_(self) -> list:
        """Each member's model config (what ``vaekit.io`` saves with it), from the member itself."""
        return [model_config(model.cfg) for model in self.models_]

    @property
    def has_density_(self) -> bool:
        """Whether log p(x) exists: every member has a prior and posterior (no Mult-DAE)."""
        return all(model.cfg.stochastic for model in self.models_)

    # -- persistence -----------------------------------------------------------------------------
    def _fitted_state(self) -> dict:
        return {"items": list(self.items_), "n_warm": self.n_warm_, "item_popularity": self.item_popularity_.tolist(),
                "val_ndcg": self.val_ndcg_, "curve": self.curve_, "hybrid": self.content_ is not None,
                "n_members": len(self.models_)}

    def _restore(self, state: dict) -> None:
        self.items_, self.n_items_ = list(state["items"]), len(state["items"])
        self.n_warm_ = int(state.get("n_warm", self.n_items_))
        self.item_popularity_ = np.asarray(state["item_popularity"], np.float64)
        self.val_ndcg_, self.curve_ = state.get("val_ndcg"), state.get("curve", [])
        self.n_members_ = int(state.get("n_members", 1))
        self.content_ = None

    def _save_parts(self, path: Path) -> None:
        save_members(self.models_, path)
        if self.content_ is not None:
            from vaekit.apps.recommend.hybrid import save_hybrid

            save_hybrid(self, path)

    def _load_parts(self, path: Path, device: str) -> None:
        self.models_ = [self.model_, *load_members(path, self.n_members_, resolve_device(device))]
        if (path / "content").is_dir():
            from vaekit.apps.recommend.hybrid import load_hybrid

            load_hybrid(self, path, device)


@torch.no_grad()
def init_popularity_bias(model, popularity: np.ndarray) -> None:
    """Start the decoder's output bias at log((clicks_i + 1) / sum_j (clicks_j + 1)): before any
    training the model ranks by popularity, and the weights learn the rest."""
    share = (popularity + 1.0) / (popularity + 1.0).sum()
    model.decoder[-1].bias.copy_(torch.as_tensor(np.log(share), dtype=model.decoder[-1].bias.dtype))


def val_ndcg(scores: np.ndarray, val: FoldIn, k: int = 100) -> float:
    """Mean NDCG@k of the validation users' held-out items, their fold-in history excluded."""
    return float(np.nanmean(ndcg_at_k(exclude(scores, val.history), val.held_out, k)))
