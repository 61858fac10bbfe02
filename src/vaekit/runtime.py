"""Where and in what precision to run: device choice, autocast, CPU feature detection."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
import time

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; anything else is passed to torch.device."""
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for but no CUDA GPU is available; use device='cpu'.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere bf16
    matmuls are emulated and far slower than float32."""
    if platform.system() != "Linux":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def matmul_work(model: torch.nn.Module, batch: int) -> int:
    """Multiply-accumulates of the model's linear and convolution weights per forward pass of a batch:
    batch x sum of weight sizes, a machine-independent measure of a step's arithmetic."""
    weights = sum(m.weight.numel() for m in model.modules()
                  if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    return int(batch) * int(weights)


# bf16 autocast pays on CPUs with bf16 hardware only when a step's arithmetic outweighs the casts and
# per-step overhead: benchmarks/results/precision_*.md measures steps/s against this work. On a quiet
# machine (precision_amx.md, 2026-11-30) bf16 was already faster from about 70 M (1.13x at 71 M, >= 1.29x
# from 126 M), but 1e8 was tried and dropped: it put the default M1 of SemiSupervisedClassifier on MNIST
# (139 M) in bf16, and benchmarks/few_labels.py's error rose on 5 of the 7 cells of draw 1 (8,000 images
# with 10 labels per class 8.05 -> 9.75%, 1,000 with 5: 21.6 -> 25.0%; float32 at the same commit gave
# 8.05 again). The threshold stays where the published results were made.
BF16_MIN_WORK = 2e8
# Where bf16 steps are faster than float32 ones on a CPU with bf16 hardware (precision_amx.md: 1.13x at
# 71 M): the lowest threshold an estimator may pass to autocast_dtype.
BF16_FASTER_WORK = 7e7


def autocast_dtype(precision: str, device: torch.device, *, work: int | None = None,
                   min_work: float | None = None) -> torch.dtype | None:
    """The autocast dtype for a precision setting, or None for plain float32. ``"auto"`` is
    deterministic: bf16 on CUDA GPUs that support it; on CPUs only with bf16 hardware (AVX512-BF16 or
    AMX) and a model whose matmul work per step (``matmul_work``) is at least ``min_work`` (default
    ``BF16_MIN_WORK``; an estimator whose own measurements show bf16 keeping its quality may pass a
    lower one, down to where bf16 is faster); float32 everywhere else."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        big = work is not None and work >= (BF16_MIN_WORK if min_work is None else min_work)
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() and big else None
    raise ValueError(f"Unknown precision {precision!r}; choose 'auto', 'fp32', 'bf16' or 'fp16'.")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed precision for the networks; likelihoods, KL and losses are computed in float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


TORCH_DEFAULT_THREADS = torch.get_num_threads()  # before anyone (the user, the CLI) changes it
CHOSEN = {"threads": 0}  # threads set explicitly through set_threads (e.g. vaekit --threads N)


def set_threads(n: int) -> None:
    """Use ``n`` CPU threads from now on, and let ``default_threads`` respect that choice."""
    CHOSEN["threads"] = n
    torch.set_num_threads(n)


def default_threads() -> int:
    """Threads for torch's CPU kernels when the user has not chosen (no OMP_NUM_THREADS, no
    torch.set_num_threads call, no ``vaekit --threads``). On machines with two cores or fewer, what is
    free decides: a short probe (``probe_threads``) takes both cores when they multiply faster than one
    and one core when other processes keep the second busy, where OpenMP workers spin against them and
    small models run many times slower (benchmarks/results/speed.md). Otherwise the current setting.
    The count used is recorded by ``fit`` (``History.threads``): the same seed and the same count give
    the same weights."""
    current, cores = torch.get_num_threads(), available_cores()
    # torch starts with one thread per core: fewer than that was set before vaekit was imported
    chosen = current != TORCH_DEFAULT_THREADS or current < cores
    if CHOSEN["threads"] or "OMP_NUM_THREADS" in os.environ or chosen:
        return current
    return probe_threads(cores) if cores == 2 else (1 if cores < 2 else current)


PROBE = {"at": -math.inf, "threads": 1}
PROBE_SECONDS, PROBE_REUSE, PROBE_GAIN = 0.02, 30.0, 1.3


def matmul_rate(n: int, a: torch.Tensor, b: torch.Tensor) -> float:
    """``a @ b`` per second on ``n`` threads, over ``PROBE_SECONDS``."""
    torch.set_num_threads(n)
    torch.mm(a, b)  # wake the pool
    t0, reps = time.perf_counter(), 0
    while time.perf_counter() - t0 < PROBE_SECONDS:
        torch.mm(a, b)
        reps += 1
    return reps / (time.perf_counter() - t0)


def probe_threads(cores: int) -> int:
    """``cores`` if a float32 matmul the size of a small model's step (256 x 512 by 512 x 512) runs at
    least ``PROBE_GAIN`` times faster on ``cores`` threads than on one, measured now (1, n, 1, n, about
    0.1 s in all), else 1. The answer is reused for ``PROBE_REUSE`` seconds."""
    now = time.monotonic()
    if now - PROBE["at"] < PROBE_REUSE:
        return PROBE["threads"]
    a, b = torch.full((256, 512), 0.5), torch.full((512, 512), 0.5)  # no draw from the global RNG
    before = torch.get_num_threads()
    try:
        r = [matmul_rate(n, a, b) for n in (1, cores, 1, cores)]
    finally:
        torch.set_num_threads(before)
    PROBE.update(at=time.monotonic(), threads=cores if min(r[1], r[3]) >= PROBE_GAIN * max(r[0], r[2]) else 1)
    return PROBE["threads"]


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextlib.contextmanager
def num_threads(n: int = 0):
    """Run the block with ``n`` CPU threads (0 = ``default_threads()``, -1 = every available core),
    then restore the caller's setting."""
    before = torch.get_num_threads()
    n = default_threads() if n == 0 else (available_cores() if n == -1 else n)
    if n > 0 and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextlib.contextmanager
def no_arg_validation():
    """Skip torch.distributions' argument checks inside the block: each check is a host sync
    (``bool`` of a device tensor) per distribution per step. ``fit`` catches bad values through
    its non-finite loss check instead."""
    from torch.distributions import Distribution

    before = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(before)


def heavy(fn):
    """Run ``fn`` under the library's runtime policy (thread count, no per-call argument checks):
    the decorator for every heavy path (fit, evaluation, scoring, compression)."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with num_threads(0), no_arg_validation():
            return fn(*args, **kwargs)

    return wrapped
