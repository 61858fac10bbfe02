"""Length-bucketed batches for token rows: each step takes rows of similar length, so the recurrent
networks run over little padding (a random batch of ZINC molecules is padded to its longest row, about
1.6x the mean length)."""

from __future__ import annotations

import math

import torch

from vaekit import distributed as ddp


class LengthBucketed:
    """A ``vaekit.train.fit`` batch plan: every row once per epoch. The rows are shuffled, cut into
    pools of ``pool`` batches, sorted by length within each pool and cut into batches; the batches
    are then shuffled, so the order of lengths is random from step to step."""

    def __init__(self, lengths: torch.Tensor, *, pool: int = 50):
        self.lengths = torch.as_tensor(lengths).cpu()
        self.pool = int(pool)

    def steps(self, n: int, batch_size: int) -> int:
        return math.ceil(n / batch_size)

    def epoch(self, n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        perm = torch.randperm(n, generator=generator)
        batches = []
        for pool in perm.split(batch_size * self.pool):
            pool = pool[self.lengths[pool].argsort(stable=True)]
            batches.extend(pool.split(batch_size))
        order = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i].tensor_split(ddp.world_size())[ddp.rank()] for i in order]
