"""Training a recommender model with ``vaekit.train.fit``: sparse batches, the KL annealing schedule,
and model selection by validation NDCG@100 on fold-in users (Liang et al. 2018, sec. 4.3)."""

from __future__ import annotations

import copy
import dataclasses
import math
from functools import partial

import numpy as np
import scipy.sparse as sp
import torch

from vaekit.apps.recommend.batches import dense_batches, phased_loader, sparse_loader
from vaekit.apps.recommend.composite import OldPosterior, composite_elbo
from vaekit.apps.recommend.metrics import exclude, ndcg_at_k
from vaekit.apps.recommend.model import MultVAE
from vaekit.apps.recommend.objectives import mult_dae, user_beta_elbo
from vaekit.apps.recommend.splits import FoldIn
from vaekit.config import CONSTANT_LR, TrainConfig
from vaekit.objectives import elbo
from vaekit.train import fit


@torch.inference_mode()
def model_scores(model: MultVAE, X: sp.csr_matrix, *, batch_size: int = 1024) -> np.ndarray:
    """Ranking scores (n_rows, n_items) for histories ``X``: log softmax of the decoder logits at
    E_q[z|x], i.e. log-probabilities in nats that the next click is each item."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [torch.log_softmax(model.scores(xb), -1).cpu().numpy() for _, xb in dense_batches(X, batch_size, device)]
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, model.cfg.n_items), np.float32)


class BestByNDCG:
    """Callback for ``vaekit.train.fit``: after each epoch, NDCG@100 on the validation users (their
    fold-in history shown, held-out items scored) goes into the epoch's record as ``val_ndcg@100``;
    the best weights are kept and training stops after ``patience`` epochs without improvement."""

    def __init__(self, val: FoldIn, *, patience: int = 0, k: int = 100):
        self.val, self.patience, self.k = val, patience, k
        self.best, self.best_epoch, self.best_state, self.bad = -math.inf, 0, None, 0

    def __call__(self, record: dict, model: MultVAE) -> bool:
        s = exclude(model_scores(model, self.val.history), self.val.history)
        ndcg = float(np.nanmean(ndcg_at_k(s, self.val.held_out, self.k)))
        record[f"val_ndcg@{self.k}"] = ndcg
        if ndcg > self.best:
            self.best, self.best_epoch, self.bad = ndcg, record["epoch"], 0
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad += 1
        return self.patience > 0 and self.bad >= self.patience


OBJECTIVES = ("elbo", "user_beta", "dae", "composite")


def objective_for(kind: str, *, gamma: float = 0.005, old: OldPosterior | None = None):
    """The training objective of a model kind: the ELBO (Mult-VAE), RecVAE's per-user beta, Mult-DAE's,
    or RecVAE's composite prior (needs ``old``, the frozen previous encoder)."""
    if kind == "composite":
        return partial(composite_elbo, old=old, gamma=gamma)
    if kind == "elbo":
        return elbo
    if kind == "user_beta":
        return partial(user_beta_elbo, gamma=gamma)
    if kind == "dae":
        return mult_dae
    raise ValueError(f"Unknown objective {kind!r}; choose one of {', '.join(OBJECTIVES)}.")


def train(model: MultVAE, X: sp.csr_matrix, *, val: FoldIn | None, config: TrainConfig, objective: str = "elbo",
          anneal_fraction: float = 0.8, patience: int = 0, gamma: float = 0.005, passes: tuple[int, int] = (3, 1)):
    """Fit ``model`` on the rows of ``X`` in shuffled sparse batches. The KL weight rises linearly from
    0 to ``config.beta`` (the cap) over ``anneal_fraction`` of all steps. With ``val``, the weights
    of the epoch with the best validation NDCG@100 are restored. ``objective="composite"``: each
    epoch is ``passes`` = (encoder passes, decoder passes) over the users, alternating (RecVAE), and
    the previous epoch's encoder is the prior's q_old. Returns (History, BestByNDCG or None)."""
    callbacks, old = [], None
    if objective == "composite":
        loader = phased_loader(X, batch_size=config.batch_size, encoder_passes=passes[0], decoder_passes=passes[1],
                               seed=config.seed)
        old = OldPosterior(model)
        callbacks.append(old.refresh)
    else:
        loader = sparse_loader(X, batch_size=config.batch_size, shuffle=True, seed=config.seed)
    steps = config.epochs * len(loader)
    cfg = dataclasses.replace(config, kl_schedule="linear", warmup_steps=max(1, int(anneal_fraction * steps)), patience=0,
                              **CONSTANT_LR)
    callback = BestByNDCG(val, patience=patience) if val is not None and val.held_out.nnz else None
    history = fit(model, loader, config=cfg, callbacks=callbacks + ([callback] if callback else []),
                  objective=objective_for(objective, gamma=gamma, old=old))
    if callback is not None and callback.best_state is not None:
        model.load_state_dict(callback.best_state)
        history.best_epoch = callback.best_epoch
    model.eval()
    return history, callback


def curve(history) -> list[dict]:
    """Per epoch: the training ELBO and KL (nats per user), beta, and validation NDCG@100."""
    keys = ("epoch", "train_elbo", "train_kl", "beta", "val_ndcg@100", "seconds")
    return [{k: r[k] for k in keys if k in r} for r in history.records]
