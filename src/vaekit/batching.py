"""Batch plans: which rows of in-memory data each training step of an epoch takes.

A plan is drawn from a seeded generator at the start of each epoch, so the same generator state gives
the same epoch (``fit`` saves that state in its checkpoints, which makes resuming exact). Under DDP each
rank takes its part of every global batch.
"""

from __future__ import annotations

import math

import torch

from vaekit import distributed as ddp


class Shuffled:
    """Every row once per epoch, in a fresh random order, in batches of ``batch_size``."""

    def steps(self, n: int, batch_size: int) -> int:
        order, local = ddp.shard(torch.arange(n), batch_size)
        return math.ceil(len(order) / local)

    def epoch(self, n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        perm, local = ddp.shard(torch.randperm(n, generator=generator), batch_size)
        return list(perm.split(local))


class LabelledUnlabelled:
    """Semi-supervised batches: every step takes ``batch_size`` unlabelled rows (``y < 0``) and
    ``labelled_batch`` labelled rows (default ``batch_size``, at most the number labelled), the labelled
    rows cycled through in shuffled order. With few labels, random batches of the whole set would rarely
    hold a labelled row. An epoch is one pass over the larger of the two parts."""

    def __init__(self, y: torch.Tensor, *, labelled_batch: int | None = None):
        y = torch.as_tensor(y).cpu()
        self.labelled = (y >= 0).nonzero().squeeze(1)
        self.unlabelled = (y < 0).nonzero().squeeze(1)
        if len(self.labelled) == 0:
            raise ValueError("No labelled rows: every label is -1; label at least one example per class.")
        self.labelled_batch = labelled_batch

    def sizes(self, batch_size: int) -> tuple[int, int, int]:
        n_lab, n_unl = len(self.labelled), len(self.unlabelled)
        b_lab = min(n_lab, self.labelled_batch or batch_size)
        steps = math.ceil(max(n_unl, n_lab) / batch_size) if n_unl else math.ceil(n_lab / b_lab)
        return b_lab, steps, n_lab

    def steps(self, n: int, batch_size: int) -> int:
        return self.sizes(batch_size)[1]

    def epoch(self, n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        b_lab, steps, n_lab = self.sizes(batch_size)
        unl = self.unlabelled[torch.randperm(len(self.unlabelled), generator=generator)]
        rounds = math.ceil(steps * b_lab / n_lab)
        lab = torch.cat([self.labelled[torch.randperm(n_lab, generator=generator)] for _ in range(rounds)])
        out = []
        for s in range(steps):
            idx = torch.cat([lab[s * b_lab:(s + 1) * b_lab], unl[s * batch_size:(s + 1) * batch_size]])
            out.append(idx.tensor_split(ddp.world_size())[ddp.rank()])
        return out
