"""Dataset-level evaluation: ELBO, importance-weighted log p(x), bits/dim, KL per dimension, active units.

Every number is per example in nats unless its name says bits/dim; ``elbo`` and ``log_likelihood``
are higher-is-better, ``nll`` is their negation. All functions are deterministic for a given
``seed`` and leave the global random state untouched.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from vaekit.likelihoods import feature_log_prob
from vaekit.objectives import Terms, elbo, kl_terms, log_weights, run
from vaekit.runtime import autocast, heavy

SAMPLES_PER_CHUNK = 1 << 16  # rows of (example, sample) pairs decoded at once: bounds memory
CPU_CHUNK_FLOATS = 1 << 22  # values in the largest per-chunk intermediate on a CPU


def split_batch(batch) -> tuple:
    """A DataLoader batch as (x, y): a tensor, a 1-tuple (TensorDataset of x) or an (x, y) pair."""
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def batches(x, y=None, *, batch_size: int, device: torch.device | None = None) -> Iterator:
    """(xb, yb) pairs from in-memory tensors (sliced in order) or from a DataLoader."""
    if isinstance(x, DataLoader):
        for batch in x:
            xb, yb = split_batch(batch)
            yield xb.to(device) if device else xb, (yb.to(device) if device and yb is not None else yb)
        return
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        yb = None if y is None else y[i : i + batch_size]
        if device is not None:
            xb, yb = xb.to(device), (None if yb is None else yb.to(device))
        yield xb, yb


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Fix the random stream inside the block and restore the caller's afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def model_device(model) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def dataset_elbo(model, x, y=None, *, batch_size: int = 1024, seed: int = 0,
                 dtype: torch.dtype | None = None, objective=elbo) -> dict[str, float]:
    """Mean ELBO, E_q[log p(x|z)] and KL over a dataset (nats per example), one sample of z each.

    ``objective`` (default: the ELBO) is any function returning ``Terms``; its ``elbo`` is averaged."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    totals, n = torch.zeros(3, device=device, dtype=torch.float64), 0
    with seeded(seed, device):
        for xb, yb in batches(x, y, batch_size=batch_size, device=device):
            with autocast(device, dtype):
                t: Terms = objective(model, xb, yb)
            totals += torch.stack([t.elbo.sum(), t.log_px_z.sum(), t.kl.sum()]).double()
            n += len(xb)
    model.train(was_training)
    if n == 0:
        raise ValueError("Cannot evaluate on an empty dataset.")
    mean = (totals / n).tolist()
    return {"elbo": mean[0], "log_px_z": mean[1], "kl": mean[2]}


@heavy
@torch.inference_mode()
def log_likelihood(model, x, y=None, *, k: int = 1000, seed: int = 0,
                   samples_per_chunk: int = SAMPLES_PER_CHUNK, dtype: torch.dtype | None = None,
                   weights=None, features: torch.Tensor | None = None, contributions: bool = False,
                   progress: bool = False):
    """Importance-weighted estimate of log p(x) per example, (N,) nats on the CPU (Burda et al. 2015,
    eq. 8 with k samples from q(z|x)); a lower bound in expectation that tightens as k grows. The one
    importance-weighted estimator: it works on every model through ``objectives.log_weights``.

    Work is batched over examples and samples and chunked so that at most ``samples_per_chunk``
    (example, sample) pairs are decoded at once: k = 5000 runs in bounded memory. ``features`` (a 0/1
    mask over the likelihood's features, e.g. a table's columns) scores only those features: log p(x_S),
    exact for likelihoods that factorise given z. ``weights="likelihood"`` drops the prior/posterior
    ratio (log (1/k) sum_i p(x|z_i), the reconstruction probability of An & Cho 2015). With
    ``contributions=True`` also returns (N, F) per-feature terms -E[log p(x_f|z)] under the
    self-normalised importance weights. ``progress`` shows a bar (a line every 30 s off a terminal).
    """
    if int(k) < 1:
        raise ValueError(f"k must be a positive number of importance samples, got {k}.")
    k = int(k)
    was_training = model.training
    model.eval()
    device = model_device(model)
    # on a CPU, chunks whose decoder output stays near the caches: the likelihood's element-wise passes
    # are memory-bound, and 4M-value chunks evaluate ~1.4x faster than 64M-value ones (speed.md)
    floats = CPU_CHUNK_FLOATS if device.type == "cpu" else 1 << 26
    samples_per_chunk = min(samples_per_chunk, rows_within_memory(model, floats))
    batch = max(1, samples_per_chunk // k)
    k_chunk = min(k, samples_per_chunk)
    mask = None if features is None else torch.as_tensor(features, dtype=torch.float32, device=device)
    out, parts = [], []
    bar = progress_bar(progress, len(x) if hasattr(x, "__len__") else None, "log p(x)")
    with seeded(seed, device):
        for xb, yb in batches(x, y, batch_size=batch, device=device):
            bar.update(len(xb))
            acc = torch.full((len(xb),), -math.inf, device=device)
            contrib = None
            for start in range(0, k, k_chunk):
                kc = min(k_chunk, k - start)
                with autocast(device, dtype):
                    log_w, log_px_z, log_q_over_p, record = log_weights(model, xb, yb, k=kc)
                if mask is not None or contributions:
                    lp = feature_log_prob(record.px, xb).float()  # (kc, B, F)
                    log_px_z = (lp if mask is None else lp * mask).sum(-1)
                    log_w = log_px_z - log_q_over_p
                if weights == "likelihood":
                    log_w = log_px_z
                elif weights is not None:
                    raise ValueError(f"Unknown weights {weights!r}; use None (importance weights) or 'likelihood'.")
                chunk = torch.logsumexp(log_w.float(), 0)  # (B,)
                if contributions:  # merge self-normalised weighted means across chunks
                    c = -(torch.softmax(log_w.float(), 0).unsqueeze(-1) * lp).sum(0)  # (B, F)
                    if contrib is None:
                        contrib = c
                    else:
                        a = torch.sigmoid(chunk - acc).unsqueeze(-1)  # share of the new chunk's weight
                        contrib = (1 - a) * contrib + a * c
                acc = torch.logaddexp(acc, chunk)
            out.append((acc - math.log(k)).cpu())
            if contributions:
                parts.append(contrib.double().cpu())
    bar.close()
    model.train(was_training)
    if not out:
        raise ValueError("Cannot evaluate on an empty dataset.")
    return (torch.cat(out), torch.cat(parts)) if contributions else torch.cat(out)


def class_marginal_log_likelihood(model, x, *, k: int = 1000, seed: int = 0) -> torch.Tensor:
    """log p(x) = log sum_y p(y) p(x|y) per example, (N,) nats on the CPU, for a model with a class prior
    (``log_class_prior``, e.g. M2): each log p(x|y) importance-weighted by ``log_likelihood``."""
    labels = [torch.full((len(x),), c, dtype=torch.long) for c in range(len(model.log_class_prior))]
    per_class = torch.stack([log_likelihood(model, x, y, k=k, seed=seed) for y in labels])  # (K, N)
    return torch.logsumexp(per_class.double() + model.log_class_prior.detach().cpu().double()[:, None], 0)


def progress_bar(show: bool, total: int | None, what: str):
    """A tqdm bar on a terminal; off a terminal, a line at most every 30 s."""
    import sys

    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=total, disable=not show, unit="example", desc=what, dynamic_ncols=True,
                mininterval=0.1 if tty else 30.0)


def rows_within_memory(model, floats: int = 1 << 26) -> int:
    """(example, sample) rows per chunk so that the largest intermediate stays near ``floats`` values:
    log p(z) under a K-component mixture prior (VampPrior) holds rows x K x L numbers, the decoder's
    output rows x D x n_params."""
    with torch.no_grad():
        pz = model.prior()
    mix = getattr(pz, "mixture_distribution", None)
    n_components = mix.logits.shape[-1] if mix is not None else 1
    n_params = getattr(getattr(model, "likelihood", None), "n_params", 1)
    latent_dim, event_shape = getattr(model, "latent_dim", 1), getattr(model, "event_shape", (1,))
    width = max(n_components * latent_dim, math.prod(event_shape) * n_params)
    return max(1, floats // width)


def bits_per_dim(nats_per_example: float, n_dims: int) -> float:
    """Convert nats per example to bits per dimension."""
    return nats_per_example / (n_dims * math.log(2))


def posterior_means(model, x, y=None, *, batch_size: int = 1024) -> torch.Tensor:
    """E_q[z|x] for every example, (N, L) on the CPU. Deterministic."""
    return posterior_stats(model, x, y, ("mean",), batch_size=batch_size)[0]


def posterior_moments(model, x, y=None, *, batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """(E_q[z|x], the standard deviations of q(z|x)) for every example, each (N, L) on the CPU, for a
    model whose q(z|x) is a (diagonal) Gaussian. Deterministic."""
    return posterior_stats(model, x, y, ("mean", "stddev"), batch_size=batch_size)


@torch.inference_mode()
def posterior_stats(model, x, y=None, stats: tuple[str, ...] = ("mean",), *,
                    batch_size: int = 1024) -> tuple[torch.Tensor, ...]:
    """The named attributes of q(z|x) (e.g. "mean", "stddev") for every example, each (N, L) on the CPU."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    out: list[list[torch.Tensor]] = [[] for _ in stats]
    for xb, yb in batches(x, y, batch_size=batch_size, device=device):
        q = run_encode(model, xb, yb)
        for acc, name in zip(out, stats):
            acc.append(getattr(q, name).float().cpu())
    model.train(was_training)
    return tuple(torch.cat(acc) for acc in out)


def run_encode(model, x, y=None):
    return model.encode(x) if y is None else model.encode(x, y)


@torch.inference_mode()
def kl_per_dimension(model, x, y=None, *, batch_size: int = 1024, seed: int = 0) -> torch.Tensor | None:
    """Mean analytic KL(q || p) per latent dimension, (latent_dim,) nats, layers top first (a lower
    layer's KL at a sample of the layers above it); None when some layer's KL does not split over
    dimensions (e.g. a mixture or VampPrior)."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    total, n = 0.0, 0
    with seeded(seed, device):
        for xb, yb in batches(x, y, batch_size=batch_size, device=device):
            record = run(model, xb, yb)
            dims = [kl_terms(layer.q, layer.p, layer.z)[1] for layer in record.layers]
            if any(d is None for d in dims):
                model.train(was_training)
                return None
            total = total + torch.cat(dims, -1).sum(0).double()
            n += len(xb)
    model.train(was_training)
    return (total / max(n, 1)).float().cpu()


def active_units(model, x, y=None, *, threshold: float = 0.01, batch_size: int = 1024) -> int:
    """Latent dimensions whose posterior mean varies over the data: Cov_x(E_q[z_d|x]) > threshold
    (Burda et al. 2015, section 5.2), summed over layers (``active_units_per_layer`` splits them)."""
    return sum(active_units_per_layer(model, x, y, threshold=threshold, batch_size=batch_size))


def active_units_per_layer(model, x, y=None, *, threshold: float = 0.01, batch_size: int = 1024) -> list[int]:
    """Active units of each stochastic layer, top first (a lower layer's mean at the means above it)."""
    means = posterior_means(model, x, y, batch_size=batch_size).double()
    sizes = list(getattr(model, "layer_sizes", (means.shape[1],)))
    if len(means) < 2:
        return [0] * len(sizes)
    active = means.var(0) > threshold
    return [int(part.sum()) for part in active.split(sizes)]


@heavy
def evaluate(model, x, y=None, *, k: int = 1000, seed: int = 0, batch_size: int = 1024,
             progress: bool = False, precision: str = "fp32") -> dict:
    """All of the above in one record (nats per example and bits/dim), computed in float32.
    ``precision="bf16"`` runs the networks of the importance-weighted estimate in bfloat16 (faster on
    CPUs with bf16 hardware; likelihoods and log-sum-exp stay float32; on binarized MNIST the
    estimate moves by a few thousandths of a nat, benchmarks/results/speed_*.md)."""
    if int(k) < 0:
        raise ValueError(f"k must be 0 (skip log p(x)) or a positive number of importance samples, got {k}.")
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"Unknown precision {precision!r} for evaluation; choose 'fp32' or 'bf16'.")
    n_dims = math.prod(model.event_shape)
    e = dataset_elbo(model, x, y, batch_size=batch_size, seed=seed)
    record = {**e, "n_examples": len(x), "n_dims": n_dims, "elbo_bits_per_dim": bits_per_dim(-e["elbo"], n_dims)}
    if k:
        dtype = torch.bfloat16 if precision == "bf16" else None
        ll = log_likelihood(model, x, y, k=k, seed=seed, progress=progress, dtype=dtype).double()
        record.update(k=int(k), precision=precision, log_likelihood=float(ll.mean()), log_likelihood_median=float(ll.median()),
                      nll=float(-ll.mean()), bits_per_dim=bits_per_dim(float(-ll.mean()), n_dims))
    per_layer = active_units_per_layer(model, x, y, batch_size=batch_size)
    record["active_units"], record["latent_dim"] = sum(per_layer), int(model.latent_dim)
    if len(per_layer) > 1:
        record["active_units_per_layer"] = per_layer
        record["layer_sizes"] = list(model.layer_sizes)
    kl_dims = kl_per_dimension(model, x, y, batch_size=batch_size)
    record["kl_per_dim"] = None if kl_dims is None else [round(v, 5) for v in kl_dims.tolist()]
    return record
