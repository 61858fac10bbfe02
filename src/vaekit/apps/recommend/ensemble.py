"""An ensemble of independently seeded recommenders read as one model: the uniform mixture of the
members' predictive distributions,

    p(next click = i | x) = (1 / M) sum_m softmax(f_m(E_{q_m}[z|x]))_i,      log p = logsumexp_m(log p_m) - log M

so ``predict`` stays a log-probability in nats, and the mixture density of a history is
log p(x) = logsumexp_m log p_m(x) - log M. Member 0 is saved as the estimator's own model; members
1..M-1 go to ``members/<m>/`` in the same ``vaekit.io`` format.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from scipy.special import logsumexp

from vaekit.io import load_model, save_model

MEMBERS = "members"


def mixture(log_probs: list[np.ndarray]) -> np.ndarray:
    """log (1/M) sum_m exp(log_probs[m]), elementwise: the uniform mixture of M distributions (nats)."""
    if len(log_probs) == 1:
        return log_probs[0]
    return (logsumexp(np.stack(log_probs), axis=0) - math.log(len(log_probs))).astype(log_probs[0].dtype)


def member_seeds(seed: int, n: int) -> list[int]:
    """Member m trains with seed + m, so member 0 is the single model of the same ``random_state``."""
    return [seed + m for m in range(n)]


def member_kinds(names: list[str], n: int) -> list[str]:
    """The model of each of n members: the names taken in turn, so ``vae+recvae`` with 5 members is
    vae, recvae, vae, recvae, vae (member 0 is always the first name)."""
    return [names[m % len(names)] for m in range(n)]


def save_members(members: list[torch.nn.Module], path: Path) -> None:
    """Members 1..M-1, each with its own model config (a mixed ensemble's members differ)."""
    from vaekit.apps.recommend.model import model_config

    for m, model in enumerate(members[1:], start=1):
        save_model(model, model_config(model.cfg), path / MEMBERS / str(m), kind="RecommenderMember")


def load_members(path: Path, n: int, device) -> list[torch.nn.Module]:
    """Members 1..n-1 from ``path/members``; a missing one is a clear error."""
    out = []
    for m in range(1, n):
        where = path / MEMBERS / str(m)
        if not where.is_dir():
            raise ValueError(f"{path} was saved with {n} ensemble members but {where} is missing; "
                             "save the recommender again.")
        out.append(load_model(where, device=device)[0])
    return out
