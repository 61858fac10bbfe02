"""``fit_m2``: the training loop for the semi-supervised VAE. Read it top to bottom.

With few labels, random batches of the whole set would rarely hold a labelled row, so every step
takes one batch of unlabelled rows and one of labelled rows (cycled through in shuffled order) and
minimises ``m2_objective`` with f = N_labelled / N, an unbiased estimate of J^alpha / N.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from vaekit.apps.semisupervised import SemiSupervisedVAE, m2_objective
from vaekit.config import TrainConfig
from vaekit.runtime import autocast, autocast_dtype, resolve_device
from vaekit.schedules import SCHEDULES
from vaekit.train import TrainingDiverged, make_optimizer


def check_labels(y: torch.Tensor, n: int, n_classes: int) -> None:
    """Labels are integers in [0, n_classes) or -1 (unlabelled), one per row, at least one labelled."""
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"y must be 1-D with one label per row of x ({n}), got shape {tuple(y.shape)}.")
    if bool(((y < -1) | (y >= n_classes)).any()):
        raise ValueError(f"Labels must be -1 (unlabelled) or in [0, {n_classes}); got values "
                         f"from {int(y.min())} to {int(y.max())}.")
    if not bool((y >= 0).any()):
        raise ValueError("No labelled rows: every label is -1; label at least one example per class.")


def fit_m2(model: SemiSupervisedVAE, x, y, *, alpha: float | None = None, config: TrainConfig | None = None,
           x_scale: torch.Tensor | None = None,
           callbacks: Sequence[Callable[[dict, torch.nn.Module], bool | None]] = ()) -> list[dict]:
    """Train M2 on ``x`` with labels ``y`` (-1 = unlabelled). Returns one record per epoch.

    ``alpha`` is the classification weight of eq. 9 (default 0.1 N, as in the paper). An epoch is one
    pass over the larger of the labelled and unlabelled parts. With ``x_scale`` each step sees a fresh
    x + x_scale * eps, eps ~ N(0, I): for M1+M2, x and x_scale are the loc and scale of q(z1|x), and
    M2 trains on samples z1 ~ q(z1|x) (Kingma et al. 2014, section 3.2).
    ``config`` supplies epochs, batch_size, lr, weight_decay, beta with kl_schedule and warmup_steps,
    grad_clip, seed, device and precision.
    """
    cfg = config or TrainConfig()
    device = resolve_device(cfg.device)
    dtype = autocast_dtype(cfg.precision, device)
    model.to(device)
    x = torch.as_tensor(x).float().to(device)
    y = torch.as_tensor(y).long().to(device)
    check_labels(y, len(x), model.n_classes)
    if x_scale is not None:
        x_scale = torch.as_tensor(x_scale).float().to(device)
    lab, unl = (y >= 0).nonzero().squeeze(1), (y < 0).nonzero().squeeze(1)  # row indices
    n_lab, n_unl = len(lab), len(unl)
    f = n_lab / len(y)
    alpha = 0.1 * len(y) if alpha is None else float(alpha)
    B, B_lab = cfg.batch_size, min(n_lab, cfg.batch_size)
    steps_per_epoch = math.ceil(max(n_unl, n_lab) / B) if n_unl else math.ceil(n_lab / B_lab)
    opt, sched = make_optimizer(model, cfg, cfg.epochs * steps_per_epoch)
    beta_at = functools.partial(SCHEDULES[cfg.kl_schedule], beta=cfg.beta, warmup_steps=cfg.warmup_steps)
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    lab_order, lab_pos = lab[torch.randperm(n_lab, generator=g).to(device)], 0
    records, step = [], 0
    bar = tqdm(total=cfg.epochs * steps_per_epoch, disable=not cfg.progress, unit="step", dynamic_ncols=True)
    try:
        for epoch in range(cfg.epochs):
            model.train()
            unl_order = unl[torch.randperm(n_unl, generator=g).to(device)]
            sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss, elbo, steps
            for s in range(steps_per_epoch):
                if lab_pos + B_lab > n_lab:  # next pass over the labelled rows
                    lab_order, lab_pos = lab[torch.randperm(n_lab, generator=g).to(device)], 0
                idx = torch.cat([lab_order[lab_pos: lab_pos + B_lab], unl_order[s * B: (s + 1) * B]])
                lab_pos += B_lab
                xb = x[idx] if x_scale is None else x[idx] + x_scale[idx] * torch.randn_like(x[idx])
                with autocast(device, dtype):
                    terms = m2_objective(model, xb, y[idx], alpha=alpha, labelled_fraction=f, beta=beta_at(step))
                opt.zero_grad(set_to_none=True)
                terms.loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                if sched is not None:
                    sched.step()
                step += 1
                sums += torch.stack([terms.loss.detach(), terms.elbo.detach().mean(),
                                     torch.ones((), device=device)]).double()
                bar.update(1)
            loss, mean_elbo = (sums[:2] / sums[2]).tolist()
            if not math.isfinite(loss):
                raise TrainingDiverged(f"The loss became {loss} in epoch {epoch + 1}; lower the learning rate "
                                       "or set grad_clip.")
            record = {"epoch": epoch + 1, "loss": loss, "train_elbo": mean_elbo, "beta": beta_at(step)}
            records.append(record)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.2f}")
            if any([bool(cb(record, model)) for cb in callbacks]):  # noqa: C419 - call every callback
                break
    finally:
        bar.close()
    model.eval()
    return records
