"""``fit``: one explicit training loop. Read it top to bottom.

In-memory tensors are shuffled and sliced by index on the training device; a DataLoader is iterated
as given. The loop never syncs with the host inside an epoch except to refresh the progress bar.
Under torchrun (or an initialised process group) the model runs in DistributedDataParallel and
each rank trains on its slice of every global batch (``vaekit.distributed``); only rank 0 writes.
Checkpoints hold everything needed to continue exactly (model, optimizer, scheduler, RNG states,
position in the epoch), so an interrupted and resumed run ends with the same weights on CPU.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from vaekit import distributed as ddp
from vaekit.batching import Shuffled
from vaekit.config import TrainConfig, check_train_config, to_dict
from vaekit.evaluate import dataset_elbo, split_batch
from vaekit.io import atomic_write
from vaekit.objectives import OBJECTIVES, iwae_bound
from vaekit.runtime import autocast, autocast_dtype, matmul_work, no_arg_validation, num_threads, resolve_device
from vaekit.schedules import SCHEDULES

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
# a checkpoint after the epoch that ends at least this long after the last one (and after the last
# epoch, an early stop or an interrupt); metrics.jsonl after every epoch. Saving after every epoch
# cost the README's job a tenth of its training time.
CHECKPOINT_SECONDS = 10.0


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class History:
    records: list[dict] = field(default_factory=list)  # one per epoch
    best_epoch: int = -1
    best_val_elbo: float = -math.inf
    stopped_early: bool = False
    precision: str = ""  # what the networks trained in: "fp32", "bf16" or "fp16" (precision="auto" resolved)
    threads: int = 0  # CPU threads used


Callback = Callable[[dict, torch.nn.Module], "bool | None"]  # return True to stop training


def make_optimizer(model, cfg: TrainConfig, steps_total: int):
    """AdamW with the fused kernel (one multi-tensor step, measured in benchmarks/results/speed.md),
    and the learning-rate schedule: a linear warm-up over ``lr_warmup`` of the steps, then constant
    or a cosine decay to 0 at the last step."""
    fused = next(model.parameters()).device.type in ("cuda", "cpu")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    if cfg.lr_schedule not in ("none", "cosine"):
        raise ValueError(f"Unknown lr_schedule {cfg.lr_schedule!r}; choose 'none' or 'cosine'.")
    if cfg.lr_schedule == "none" and cfg.lr_warmup <= 0:
        return opt, None
    total, warm = max(1, steps_total), int(cfg.lr_warmup * steps_total)
    cosine = cfg.lr_schedule == "cosine"
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, functools.partial(lr_factor, total=total, warm=warm,
                                                                         cosine=cosine))


def lr_factor(step: int, *, total: int, warm: int, cosine: bool) -> float:
    """The learning rate at ``step`` as a fraction of ``lr``."""
    if step < warm:
        return (step + 1) / warm
    if not cosine:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def as_tensor(x, device):
    """In-memory data goes to the training device once; DataLoaders and None pass through."""
    return x if x is None or isinstance(x, DataLoader) else torch.as_tensor(x).to(device)


def compact(x: torch.Tensor) -> tuple[torch.Tensor, torch.dtype | None]:
    """Floating data whose values are all whole numbers in 0..255 (binary images, pixel counts) kept
    as uint8, a quarter of float32's memory and gather traffic; returns (data, the dtype to cast each
    batch back to), or (x, None) when the data is not exactly representable."""
    if not x.is_floating_point() or x.numel() == 0:
        return x, None
    lo, hi = torch.aminmax(x)
    if lo < 0 or hi > 255 or not bool((x == x.round()).all()):
        return x, None
    return x.to(torch.uint8), x.dtype


def fit(model: torch.nn.Module, x, *, y=None, x_val=None, y_val=None,
        config: TrainConfig | None = None, callbacks: Sequence[Callback] = (),
        out_dir: str | Path | None = None, resume: bool = False,
        objective: Callable | None = None, plan=None) -> History:
    """Train ``model`` on ``x`` (a tensor or a DataLoader of tensors or (x, y) pairs).

    Validation runs every epoch on ``x_val``; with ``patience`` > 0 training stops when the
    validation ELBO has not improved for that many epochs, and the best weights are restored.
    With ``out_dir``, writes ``metrics.jsonl`` after every epoch and ``checkpoint.pt`` at most every
    ``CHECKPOINT_SECONDS`` and at the end; ``resume=True`` continues from that checkpoint.

    ``objective`` replaces the built-in one (``config.objective``): a pure function
    ``objective(model, x, y, *, beta, free_bits) -> Terms``, used for training and validation.
    It must call ``model(...)`` (not only ``model.encode``) so that DDP can synchronise gradients.
    ``plan`` chooses the rows of each step for in-memory data (``vaekit.batching``: ``Shuffled`` by
    default, ``LabelledUnlabelled`` for semi-supervised training). Validation and every reported
    number are computed in float32, whatever precision trains.

    Distributed (torchrun, or a process group already initialised): ``batch_size`` is the global
    batch, split over ranks; in-memory data is sharded per rank; a DataLoader must shard itself
    (DistributedSampler). Metrics are summed over ranks; only rank 0 writes files and progress.
    """
    cfg = check_train_config(config or TrainConfig())
    with num_threads(cfg.threads), no_arg_validation():
        return _fit(model, x, y, x_val, y_val, cfg, callbacks, out_dir, resume, objective, plan or Shuffled())


def _fit(model, x, y, x_val, y_val, cfg: TrainConfig, callbacks, out_dir, resume, objective, plan) -> History:
    device = resolve_device(cfg.device)
    ddp.setup(device)
    device = ddp.rank_device(device)
    main = ddp.is_main()
    dtype = autocast_dtype(cfg.precision, device, work=matmul_work(model, cfg.batch_size),
                           min_work=cfg.bf16_min_work or None)
    model.to(device)
    in_memory = not isinstance(x, DataLoader)
    x, y, x_val, y_val = (as_tensor(v, device) for v in (x, y, x_val, y_val))
    x, x_dtype = compact(x) if in_memory else (x, None)  # cast back per batch
    n = len(x) if in_memory else None
    if in_memory:
        steps_per_epoch = plan.steps(n, cfg.batch_size)
    else:
        steps_per_epoch = len(x)
    if objective is None:
        if cfg.objective not in OBJECTIVES:
            raise ValueError(f"Unknown objective {cfg.objective!r}; choose 'elbo' or 'iwae'.")
        if cfg.objective == "iwae":
            objective = functools.partial(iwae_objective, k=cfg.k)
        else:
            objective = OBJECTIVES[cfg.objective]
    beta_at = functools.partial(SCHEDULES[cfg.kl_schedule], beta=cfg.beta, warmup_steps=cfg.warmup_steps)
    net = ddp.wrap(model, device)  # trains through DDP; validation and checkpoints use ``model``
    net = torch.compile(net) if cfg.compile else net
    opt, sched = make_optimizer(model, cfg, cfg.epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    shuffle = torch.Generator(device="cpu")

    torch.manual_seed(cfg.seed)
    shuffle.manual_seed(cfg.seed)
    history, epoch, batch_start, step, bad_epochs = History(), 0, 0, 0, 0
    best_state, partial = None, None
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and main:
        out.mkdir(parents=True, exist_ok=True)
    if resume:
        ckpt = load_checkpoint(out)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if sched is not None:
            sched.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        torch.set_rng_state(ckpt["rng"])
        shuffle.set_state(ckpt["epoch_shuffle_state"])
        epoch, batch_start, step, bad_epochs = ckpt["epoch"], ckpt["batch"], ckpt["step"], ckpt["bad_epochs"]
        history = History(**ckpt["history"])
        best_state, partial = ckpt["best_state"], ckpt["partial_sums"]
    history.precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    history.threads = torch.get_num_threads()

    def save(epoch_: int, batch_: int, epoch_shuffle_state, sums) -> None:
        if out is None or not main:
            return
        state = {
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict() if sched is not None else None,
            "scaler": scaler.state_dict(), "rng": torch.get_rng_state(),
            "epoch_shuffle_state": epoch_shuffle_state, "epoch": epoch_, "batch": batch_, "step": step,
            "bad_epochs": bad_epochs, "history": history.__dict__, "best_state": best_state,
            "partial_sums": sums, "config": to_dict(cfg),
        }
        atomic_write(out / CHECKPOINT, lambda p: torch.save(state, p))
        write_metrics()

    def write_metrics() -> None:
        if out is not None and main:
            atomic_write(out / METRICS, lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in history.records)))

    # a live bar on a terminal; otherwise (a log file, a pipe) one line per epoch
    saved_at = time.monotonic()
    live = cfg.progress and main and sys.stderr.isatty()
    bar = tqdm(total=cfg.epochs * steps_per_epoch, initial=epoch * steps_per_epoch + batch_start,
               disable=not live, unit="step", dynamic_ncols=True)
    try:
        while epoch < cfg.epochs:
            t0 = time.perf_counter()
            epoch_shuffle_state = shuffle.get_state()
            model.train()
            if in_memory:
                steps = [idx.to(device, non_blocking=True) for idx in plan.epoch(n, cfg.batch_size, shuffle)]
                data = ((x[idx] if x_dtype is None else x[idx].to(x_dtype), None if y is None else y[idx])
                        for idx in steps[batch_start:])
            else:
                data = batches_from_loader(x, device)
            sums = partial if partial is not None else torch.zeros(4, dtype=torch.float64)
            sums = sums.to(device)  # loss * B, elbo, kl, count
            nonfinite = torch.zeros((), dtype=torch.bool, device=device)
            completed = batch_start
            try:
                for i, (xb, yb) in enumerate(data, start=batch_start):
                    beta = beta_at(step)
                    with autocast(device, dtype):
                        terms = objective(net, xb, yb, beta=beta, free_bits=cfg.free_bits)
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(terms.loss).backward()
                    if cfg.grad_clip > 0:
                        scaler.unscale_(opt)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    scaler.step(opt)
                    scaler.update()
                    if sched is not None:
                        sched.step()
                    step += 1
                    nonfinite |= ~torch.isfinite(terms.loss.detach())
                    sums += torch.stack([terms.loss.detach() * len(xb), terms.elbo.detach().sum(),
                                         terms.kl.detach().sum(), torch.tensor(float(len(xb)), device=device)]).double()
                    completed = i + 1
                    bar.update(1)
                    if live and (i + 1) % max(1, steps_per_epoch // 10) == 0:
                        s = (sums[:3] / sums[3]).tolist()
                        bar.set_postfix(epoch=epoch + 1, loss=f"{s[0]:.2f}", elbo=f"{s[1]:.2f}", kl=f"{s[2]:.2f}")
            except KeyboardInterrupt:  # keep what was done: resume continues from the next batch
                if not bool(nonfinite) and in_memory and not ddp.is_distributed():
                    save(epoch, completed, epoch_shuffle_state, sums.cpu())
                raise
            sums = ddp.all_sum(torch.cat([sums, nonfinite.double().reshape(1)]))
            sums, nonfinite = sums[:4], sums[4] > 0
            if bool(nonfinite):
                raise TrainingDiverged(
                    f"The loss became NaN or infinite in epoch {epoch + 1}; training stopped"
                    + (f" and the last good checkpoint is in {out}." if out else ".")
                    + " Lower the learning rate, set grad_clip, or check the data for extreme values.")
            partial, batch_start = None, 0
            s = (sums[:3] / sums[3]).tolist()
            record = {"epoch": epoch + 1, "step": step, "beta": beta_at(step), "lr": opt.param_groups[0]["lr"],
                      "train_loss": s[0], "train_elbo": s[1], "train_kl": s[2]}
            if x_val is not None:
                record.update(validate(model, x_val, y_val, cfg, objective))
            record["seconds"] = time.perf_counter() - t0
            if cfg.progress and main and not live and (record["epoch"] % max(1, cfg.epochs // 50) == 0
                                                      or record["epoch"] == cfg.epochs):
                print(epoch_line(record, cfg.epochs), file=sys.stderr, flush=True)  # at most ~50 lines
            history.records.append(record)
            score = record.get("val_elbo", record["train_elbo"])
            if score > history.best_val_elbo:
                history.best_val_elbo, history.best_epoch, bad_epochs = score, epoch + 1, 0
                best_state = copy.deepcopy(model.state_dict()) if cfg.patience > 0 else None
            else:
                bad_epochs += 1
            epoch += 1
            stop = cfg.patience > 0 and bad_epochs >= cfg.patience
            if main:
                stop = any([bool(cb(record, model)) for cb in callbacks]) or stop  # noqa: C419 - call every callback
            stop = ddp.broadcast_flag(stop, device)
            history.stopped_early = stop and epoch < cfg.epochs
            if stop or epoch == cfg.epochs or time.monotonic() - saved_at >= CHECKPOINT_SECONDS:
                save(epoch, 0, shuffle.get_state(), None)
                saved_at = time.monotonic()
            else:
                write_metrics()
            if stop:
                break
    finally:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def epoch_line(record: dict, epochs: int) -> str:
    """One line of progress per epoch (for logs and pipes): the loss and ELBOs in nats."""
    val = f", validation ELBO {record['val_elbo']:.3f}" if "val_elbo" in record else ""
    return (f"epoch {record['epoch']}/{epochs}: loss {record['train_loss']:.3f}, train ELBO "
            f"{record['train_elbo']:.3f}{val} nats, KL {record['train_kl']:.3f} ({record['seconds']:.1f} s)")


def validate(model, x_val, y_val, cfg: TrainConfig, objective) -> dict:
    """Validation ELBO (nats per example, float32); each rank scores its slice and the sums are combined."""
    r, world = ddp.rank(), ddp.world_size()
    xs, ys = x_val[r::world], None if y_val is None else y_val[r::world]
    totals = torch.zeros(4, dtype=torch.float64)
    if len(xs):
        v = dataset_elbo(model, xs, ys, batch_size=cfg.eval_batch_size, objective=objective)
        totals = torch.tensor([v["elbo"], v["kl"], v["log_px_z"], 1.0], dtype=torch.float64) * len(xs)
    totals = ddp.all_sum(totals).tolist()
    return {"val_elbo": totals[0] / totals[3], "val_kl": totals[1] / totals[3], "val_log_px_z": totals[2] / totals[3]}


def iwae_objective(model, x, y=None, *, k: int, beta: float = 1.0, free_bits: float = 0.0):
    """IWAE_k as a training objective (Burda et al. 2015); beta and free bits do not apply."""
    return iwae_bound(model, x, y, k=k)


def batches_from_loader(loader: DataLoader, device: torch.device):
    pin = device.type == "cuda"
    for batch in loader:
        xb, yb = split_batch(batch)
        xb = xb.to(device, non_blocking=pin)
        yield xb, (None if yb is None else yb.to(device, non_blocking=pin))


def load_checkpoint(out: Path | None) -> dict:
    """Read ``checkpoint.pt`` with the safe loader (tensors and plain containers only)."""
    if out is None:
        raise ValueError("resume=True needs out_dir, the run directory that holds checkpoint.pt.")
    path = Path(out) / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint to resume from: {path} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"The checkpoint {path} is damaged or not a vaekit checkpoint ({e}).") from e


def split_validation(x, fraction: float, patience: int, seed: int):
    """A held-out part of the training rows for early stopping: (train rows, validation rows or None).
    None when ``patience`` is 0 or either part would have fewer than 8 rows."""
    n_val = int(len(x) * fraction) if patience else 0
    n_val = n_val if n_val >= 8 and len(x) - n_val >= 8 else 0
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order[n_val:]], (x[order[:n_val]] if n_val else None)
