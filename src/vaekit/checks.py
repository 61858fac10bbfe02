"""Parameter checks shared by the estimators, the configs and the command line: each returns the value
(converted where that is unambiguous) or raises ValueError with one sentence naming the fix."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence


def integer(name: str, value, *, low: int | None = None, high: int | None = None, hint: str = "") -> int:
    """An integer (a float with an integer value is accepted) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
            isinstance(value, float) and not (math.isfinite(value) and value == int(value))):
        raise ValueError(f"{name} must be an integer, got {value!r}.{' ' + hint if hint else ''}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else (f"at most {high}" if low is None else f"between {low} and {high}")
        raise ValueError(f"{name} must be {bounds}, got {value}.{' ' + hint if hint else ''}")
    return value


def real(name: str, value, *, low: float | None = None, high: float | None = None, low_open: bool = False,
         high_open: bool = False, hint: str = "") -> float:
    """A finite real number in the interval given (open ends where asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}.{' ' + hint if hint else ''}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
        where = f"in {lo or '(-inf'}, {hi or 'inf)'}"
        raise ValueError(f"{name} must be {where}, got {value:g}.{' ' + hint if hint else ''}")
    return value


def choice(name: str, value, options: Sequence) -> object:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}.")
    return value


def boolean(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}.")
    return value


def widths(name: str, value) -> tuple[int, ...]:
    """Layer widths: a sequence of positive integers (one integer means one layer; empty means none)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a list of layer widths such as [256, 128], got {value!r}.")
    return tuple(integer(f"{name}[{i}]", v, low=1) for i, v in enumerate(value))


def epochs(name: str, value) -> int | str:
    """A number of epochs (>= 1) or "auto"."""
    if value == "auto":
        return value
    return integer(name, value, low=1, hint="Use a whole number of passes over the data, or 'auto'.")


def seed(name: str, value) -> int | None:
    return None if value is None else integer(name, value, low=0)
