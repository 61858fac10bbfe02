"""KL weight schedules: plain functions of the optimisation step returning beta."""

from __future__ import annotations


def constant(step: int, *, beta: float = 1.0, **_) -> float:
    return beta


def linear_warmup(step: int, *, beta: float = 1.0, warmup_steps: int = 0, **_) -> float:
    """0 -> beta linearly over ``warmup_steps`` steps, then beta (Bowman et al. 2016)."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)


def cyclical(step: int, *, beta: float = 1.0, warmup_steps: int = 0, ratio: float = 0.5, **_) -> float:
    """Repeat a warm-up every ``warmup_steps`` steps: rise over the first ``ratio`` of each cycle,
    then hold beta (Fu et al. 2019)."""
    if warmup_steps <= 0:
        return beta
    phase = (step % warmup_steps) / warmup_steps
    return beta * min(1.0, phase / ratio)


SCHEDULES = {"constant": constant, "linear": linear_warmup, "cyclical": cyclical}
