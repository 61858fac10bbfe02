"""Time to a good model and evaluation speed: vaekit against pythae, side by side in one process.

    python benchmarks/speed.py [--data ../shared/data] [--epochs 30] [--reps 3]

Model for both: 784-512-512-32 MLP encoder and 32-512-512-784 decoder, ReLU, Bernoulli likelihood,
statically binarized MNIST (50,000 train / 10,000 valid / 10,000 test). pythae runs its own trainer
at batch 128, Adam lr 1e-3 (the published comparison's setting), on the thread count that trained it
faster in this run's throughput measurement; vaekit runs its library defaults (TrainConfig()) and,
for reference, its previous defaults (batch 128, lr 1e-3, constant, float32, 1 thread). Measured here:
  * the machine's float32 and bfloat16 matmul peak (torch.mm, one thread);
  * steady-state training examples/s of vaekit's ``fit`` under each setting a default depends on
    (batch size, precision, optimizer kernel, per-step host sync, threads, torch.compile with its
    compile time) and of pythae's trainer, interleaved and repeated (medians), so machine load hits
    all alike;
  * one training run each over the same epoch budget, epochs interleaved (an epoch of each vaekit
    recipe, then an epoch of pythae): training seconds (validation excluded for all), validation ELBO
    after every epoch (one z per example, nats), time to reach -ELBO <= 110 / 100 / 95 nats, and the
    final validation ELBO;
  * importance-weighted log-likelihood (k = 1000, 1,000 shuffled test images): vaekit's
    ``log_likelihood`` in float32 and with bf16 networks, against pythae's ``VAE.get_nll``;
  * peak RSS of a child process training each for a fixed number of steps.
Writes benchmarks/results/speed_<cpu kind>.md (the raw measurements are in the file) with the command,
date, CPU model and flags, and load.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import cpu, lscpu
from torch import nn

import vaekit.train as vtrain
from vaekit import ModelConfig, TrainConfig, build_model, dataset_elbo, fit
from vaekit.evaluate import log_likelihood
from vaekit.runtime import cpu_has_fast_bf16, num_threads

ROOT = Path(__file__).resolve().parents[1]
LOADED = ROOT / "benchmarks" / "results" / "speed_loaded.md"  # an earlier run under load, quoted by the report
HIDDEN, LATENT, D = (512, 512), 32, 784
PYTHAE_BATCH, LR = 128, 1e-3
TARGET = 100.0  # nats: the -ELBO the "time to reach" column waits for
LEVELS = (110.0, 100.0, 95.0)  # -ELBO thresholds of the time-to-quality table
DEFAULTS = "vaekit defaults"
PREVIOUS = "vaekit previous defaults"
PREVIOUS_SETTINGS = {"batch_size": 128, "lr": 1e-3, "lr_schedule": "none", "lr_warmup": 0.0, "precision": "fp32",
                     "threads": 1}


# -- data and models ------------------------------------------------------------------------------
def load_mnist(data_dir: Path):
    f = np.load(data_dir / "binarized_mnist" / "binarized_mnist.npz")
    return tuple(torch.from_numpy(f[s].astype(np.float32)) for s in ("train", "valid", "test"))


def vaekit_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelConfig(input_shape=(D,), latent_dim=LATENT, hidden=HIDDEN, likelihood="bernoulli"))


def mlp(sizes):
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


def pythae_model(seed: int = 0):
    from pythae.models import VAE as PVAE
    from pythae.models import VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net, self.head = mlp((D, *HIDDEN)), nn.Linear(HIDDEN[-1], 2 * LATENT)
            self.net.append(nn.ReLU())

        def forward(self, x):
            mu, log_var = self.head(self.net(x.reshape(len(x), -1))).chunk(2, -1)
            return ModelOutput(embedding=mu, log_covariance=log_var)

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = mlp((LATENT, *reversed(HIDDEN), D))

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    torch.manual_seed(seed)
    cfg = VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce")
    return PVAE(cfg, encoder=Encoder(), decoder=Decoder())


def pythae_trainer(model, x, batch_size: int, epochs: int = 1):
    """pythae's own BaseTrainer (its DataLoader over per-example dicts, its optimizer step)."""
    import logging

    from pythae.data.datasets import BaseDataset
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    logging.getLogger("pythae").setLevel(logging.ERROR)
    cfg = BaseTrainerConfig(output_dir=os.path.join(tempfile.gettempdir(), "vaekit_speed_pythae"), num_epochs=epochs,
                            learning_rate=LR, per_device_train_batch_size=batch_size, no_cuda=True, seed=0)
    data = BaseDataset(x.reshape(-1, 1, 28, 28), torch.zeros(len(x)))
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        trainer = BaseTrainer(model, data, training_config=cfg)
        trainer.prepare_training()
    return trainer


@torch.inference_mode()
def pythae_val_elbo(model, x, seed: int = 0) -> float:
    """The same quantity as vaekit's dataset_elbo: E_q[log p(x|z)] - KL, one z per example, nats."""
    model.eval()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        total = 0.0
        for xb in x.split(1024):
            out = model.encoder(xb.reshape(-1, 1, 28, 28))
            mu, log_var = out.embedding, out.log_covariance
            z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
            p = model.decoder(z)["reconstruction"].reshape(len(xb), -1)
            log_px_z = -F.binary_cross_entropy(p, xb, reduction="none").sum(-1)
            kl = -0.5 * (1 + log_var - mu**2 - log_var.exp()).sum(-1)
            total += float((log_px_z - kl).double().sum())
    model.train()
    return total / len(x)


# -- measurements ---------------------------------------------------------------------------------
def train_flops_per_example() -> float:
    """Multiply-adds of the linear layers x 2 (FLOPs) x 3 (forward + backward ~ 2x forward)."""
    enc = [D, *HIDDEN, 2 * LATENT]
    dec = [LATENT, *reversed(HIDDEN), D]
    macs = sum(a * b for s in (enc, dec) for a, b in itertools.pairwise(s))
    return 2 * 3 * macs


def matmul_gflops(m: int, k: int, n: int, dtype, seconds: float = 1.0) -> float:
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    torch.mm(a, b)
    count, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds or count < 2:
        torch.mm(a, b)
        count += 1
    return 2 * m * k * n * count / elapsed / 1e9


def peaks() -> dict:
    shapes = [(512, 784, 512), (512, 512, 512), (1024, 1024, 1024)]
    fp32 = max(matmul_gflops(*s, torch.float32) for s in shapes)
    bf16 = max(matmul_gflops(*s, torch.bfloat16, seconds=0.5) for s in shapes[:2])
    return {"fp32": fp32, "bf16": bf16}


def optimizer_kind(kind: str):
    """make_optimizer with Adam's fused, foreach or per-parameter (for-loop) kernel."""
    def make(model, cfg, steps_total):
        opts = {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False}}[kind]
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **opts), None
    return make


def sync_every_step(model, x, y=None, **kw):
    """The ELBO objective plus a host sync each step (``loss.item()``), as many trainers do."""
    from vaekit.objectives import elbo

    terms = elbo(model, x, y, **kw)
    terms.loss.item()
    return terms


def vaekit_rate(x, steps: int, *, optimizer: str = "fused", objective=None, compiled: bool = False,
                timing: dict | None = None, **settings) -> float:
    """Examples/s of fit() over ``steps`` optimizer steps (model built outside, warm kernels), under
    the library defaults overridden by ``settings`` (TrainConfig fields). With ``timing``, records the
    first (warm-up, and for torch.compile compiling) call's seconds there."""
    model = vaekit_model()
    cfg = TrainConfig(epochs=1, device="cpu", progress=False, **{**settings, "compile": compiled})
    saved = vtrain.make_optimizer
    vtrain.make_optimizer = optimizer_kind(optimizer) if optimizer != "fused" else saved
    try:
        t0 = time.perf_counter()
        fit(model, x[: 3 * cfg.batch_size], config=cfg, objective=objective)  # warm-up (and compile)
        if timing is not None:
            timing["first_call_s"] = time.perf_counter() - t0
        xs = x[: steps * cfg.batch_size]
        t0 = time.perf_counter()
        fit(model, xs, config=cfg, objective=objective)
        return len(xs) / (time.perf_counter() - t0)
    finally:
        vtrain.make_optimizer = saved


def pythae_rate(x, steps: int, *, batch_size: int = PYTHAE_BATCH, threads: int = 1) -> float:
    with num_threads(threads):
        trainer = pythae_trainer(pythae_model(), x[: 3 * batch_size], batch_size)
        trainer.train_step(1)  # warm-up
        trainer = pythae_trainer(trainer.model, x[: steps * batch_size], batch_size)
        t0 = time.perf_counter()
        trainer.train_step(1)
        return steps * batch_size / (time.perf_counter() - t0)


def default_name() -> str:
    d = TrainConfig()
    return (f"{DEFAULTS} (batch {d.batch_size}, lr {d.lr:g}, precision {d.precision}, "
            f"threads {'auto' if d.threads == 0 else d.threads})")


def throughput(x, args) -> dict:
    """Every setting, interleaved, ``args.reps`` times; medians in examples/s."""
    s, d = args.steps, TrainConfig()
    fixed = {"precision": "fp32", "threads": 1}
    settings = {
        default_name(): lambda: vaekit_rate(x, max(4, s * 128 // d.batch_size)),
        **{f"vaekit batch {b}, fp32, 1 thread": (lambda b=b: vaekit_rate(x, max(4, s * 128 // b), batch_size=b, **fixed))
           for b in (128, 256, 512, 1024)},
        **{f"vaekit batch {b}, bf16 autocast, 1 thread": (lambda b=b: vaekit_rate(
            x, max(2, (s * 128 // b) // (1 if cpu_has_fast_bf16() else 8)), batch_size=b, precision="bf16", threads=1))
           for b in (128, 256, 512)},
        "vaekit batch 128, foreach Adam": lambda: vaekit_rate(x, s, batch_size=128, optimizer="foreach", **fixed),
        "vaekit batch 128, for-loop Adam": lambda: vaekit_rate(x, s, batch_size=128, optimizer="loop", **fixed),
        "vaekit batch 128, loss.item() every step": lambda: vaekit_rate(x, s, batch_size=128, objective=sync_every_step,
                                                                        **fixed),
        "vaekit batch 128, fp32, 2 threads": lambda: vaekit_rate(x, s, batch_size=128, precision="fp32", threads=2),
        f"pythae (batch {PYTHAE_BATCH}, 1 thread)": lambda: pythae_rate(x, s),
        f"pythae (batch {PYTHAE_BATCH}, 2 threads)": lambda: pythae_rate(x, s, threads=2),
        "pythae (batch 64, its default, 1 thread)": lambda: pythae_rate(x, 2 * s, batch_size=64),
    }
    timing: dict = {}
    if args.compile:
        settings["vaekit batch 128, torch.compile, fp32, 1 thread"] = lambda: vaekit_rate(
            x, s, batch_size=128, compiled=True, timing=timing, **fixed)
    rates: dict[str, list] = {k: [] for k in settings}
    for rep in range(args.reps):
        for name, run in settings.items():
            if rep and "compile" in name:  # compiling takes a while; one measurement
                continue
            try:
                rates[name].append(run())
            except Exception as e:  # e.g. torch.compile without a working toolchain
                rates[name].append(f"failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
            print(f"  rep {rep + 1} {name}: {rates[name][-1]}", flush=True)
    out = {k: (statistics.median(v) if all(isinstance(r, float) for r in v) else v[-1], v) for k, v in rates.items()}
    return out, timing


def race(x_train, x_val, args, contestants: dict[str, dict], pythae_threads: int) -> dict:
    """One run per contestant over ``args.epochs`` epochs, epochs interleaved (epoch e of each, then
    epoch e + 1 of each), so load hits all alike. Each vaekit run is one fit over the whole budget
    (its learning-rate schedule spans all epochs) that stops after every epoch and continues with
    ``resume=True`` from its checkpoint; the restart and checkpoint write count as training time,
    validation does not."""
    p_trainer = pythae_trainer(pythae_model(), x_train, PYTHAE_BATCH, args.epochs)
    models = {name: vaekit_model() for name in contestants}
    rows: dict[str, list] = {name: [] for name in [*contestants, "pythae"]}
    clock = dict.fromkeys(rows, 0.0)

    def one_epoch(record, model):
        return True

    with tempfile.TemporaryDirectory() as tmp:
        for epoch in range(1, args.epochs + 1):
            for i, (name, settings) in enumerate(contestants.items()):
                cfg = TrainConfig(epochs=args.epochs, device="cpu", progress=False, **settings)
                t0 = time.perf_counter()
                h = fit(models[name], x_train, config=cfg, out_dir=f"{tmp}/{i}", resume=epoch > 1,
                        callbacks=[one_epoch])
                clock[name] += time.perf_counter() - t0
                with num_threads(1):
                    val = dataset_elbo(models[name], x_val)["elbo"]
                rows[name].append({"epoch": epoch, "seconds": clock[name], "val_elbo": val, "threads": h.threads,
                                   "precision": h.precision, "lr": h.records[-1]["lr"]})
            t0 = time.perf_counter()
            with num_threads(pythae_threads), contextlib.redirect_stderr(open(os.devnull, "w")):  # its tqdm bars
                p_trainer.train_step(epoch)
            clock["pythae"] += time.perf_counter() - t0
            with num_threads(1):
                rows["pythae"].append({"epoch": epoch, "seconds": clock["pythae"],
                                       "val_elbo": pythae_val_elbo(p_trainer.model, x_val)})
            print(f"  epoch {epoch}: " + "  ".join(f"{k} {v[-1]['seconds']:.1f}s {v[-1]['val_elbo']:.2f}"
                                                   for k, v in rows.items()), flush=True)
    return {"rows": rows, "models": models, "pythae_model": p_trainer.model}


def reach(rows, target: float = TARGET) -> float | None:
    return next((r["seconds"] for r in rows if -r["val_elbo"] <= target), None)


def nll_timing(v_model, p_model, x_test, args) -> dict:
    """vaekit's estimate in float32 and with bf16 networks (same seed, same images), then pythae's."""
    g = torch.Generator().manual_seed(0)
    xs = x_test[torch.randperm(len(x_test), generator=g)[: args.nll_n]]
    out = {"n": len(xs)}
    for key, dtype in (("vaekit", None), ("vaekit_bf16", torch.bfloat16)):
        with num_threads(0):  # the library's thread policy, as a user would get it
            t0 = time.perf_counter()
            ll = log_likelihood(v_model, xs, k=args.k, dtype=dtype)
            out[f"{key}_s"], out[f"{key}_nll"] = time.perf_counter() - t0, float(-ll.double().mean())
            out[f"{key}_threads"] = torch.get_num_threads()
    xp = xs[: args.nll_n_pythae].reshape(-1, 1, 28, 28)
    p_model.eval()
    with num_threads(args.pythae_threads_used):
        t0 = time.perf_counter()
        with torch.no_grad():
            nll_p = p_model.get_nll(xp, n_samples=args.k, batch_size=100)
        tp = (time.perf_counter() - t0) * len(xs) / len(xp)
    # get_nll returns the mean of log p(x) (higher is better) despite its name
    out.update(pythae_s=tp, pythae_nll=-float(nll_p), pythae_measured_on=len(xp))
    return out


def vm_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def memory_child(which: str, data_dir: Path, steps: int, batch: int, lr: float) -> None:
    """Run in a child process: load the training images, reset the peak-RSS counter, train ``steps``
    steps; print the peak RSS while training and the RSS before it, in MiB."""
    torch.set_num_threads(1)
    x_train = load_mnist(data_dir)[0]
    x_train = x_train[: steps * max(batch, PYTHAE_BATCH)].clone()
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM to the current RSS (Linux)
        f.write("5")
    before = vm_kib("VmRSS")
    if which == "vaekit":
        fit(vaekit_model(), x_train[: steps * batch], config=TrainConfig(
            epochs=1, batch_size=batch, lr=lr, device="cpu", progress=False, threads=1))
    else:
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            pythae_trainer(pythae_model(), x_train[: steps * PYTHAE_BATCH], PYTHAE_BATCH).train_step(1)
    print(before / 1024)
    print(vm_kib("VmHWM") / 1024)


def peak_rss(which: str, args, batch: int, lr: float) -> float:
    out = subprocess.run([sys.executable, __file__, "--memory-child", which, "--data", str(args.data),
                          "--steps", str(args.steps), "--batch", str(batch), "--lr", str(lr)],
                         capture_output=True, text=True, check=True)
    before, peak = (float(v) for v in out.stdout.strip().splitlines()[-2:])
    return {"before_training": before, "peak_training": peak}


# -- report ---------------------------------------------------------------------------------------
def machine() -> str:
    return (f"{cpu()}; {os.cpu_count()} logical cores; torch {torch.__version__}; "
            f"CPU capability {torch.backends.cpu.get_cpu_capability()}; hardware bf16: {cpu_has_fast_bf16()}")


def cpu_kind() -> str:
    """A short name for the results file: vendor and the widest kernels the CPU has."""
    info = lscpu()
    model, flags = info.get("Model name", ""), set(info.get("Flags", "").split())
    vendor = "epyc" if "EPYC" in model else "xeon" if "Xeon" in model else (model.split() or ["cpu"])[0].lower()
    kind = "amx" if "amx_bf16" in flags else "avx512bf16" if "avx512_bf16" in flags else "avx2" if "avx2" in flags else "base"
    return f"{vendor}_{kind}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=30, help="optimizer steps (at batch 128) per throughput measurement")
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--nll-n", type=int, default=1000)
    p.add_argument("--nll-n-pythae", type=int, default=1000, help="pythae's get_nll is timed on this many "
                   "of the images and scaled linearly (it loops one example at a time)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/speed_<cpu kind>.md")
    p.add_argument("--memory-child", choices=("vaekit", "pythae"))
    p.add_argument("--batch", type=int, default=TrainConfig.batch_size)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--n-train", type=int, default=0, help="train on the first N images (smoke tests only)")
    p.add_argument("--alt", action="append", default=[], metavar="NAME=JSON",
                   help='another vaekit recipe in the race, e.g. \'b512={"batch_size": 512, "lr": 0.004}\'')
    p.add_argument("--no-previous", action="store_true", help="leave the previous defaults out of the race")
    p.add_argument("--render", type=Path, metavar="MD", help="only rewrite a results file from its raw JSON block")
    args = p.parse_args(argv)
    if args.render:
        text = args.render.read_text()
        raw = json.loads(text.split("```json\n", 1)[1].split("\n```", 1)[0])
        raw["rendered_by"] = f"python benchmarks/speed.py --render {args.render}"
        write_atomic(args.render, render(raw))
        return 0
    if args.memory_child:
        memory_child(args.memory_child, args.data, args.steps, args.batch, args.lr)
        return 0
    out = args.out or ROOT / "benchmarks" / "results" / f"speed_{cpu_kind()}.md"
    command = "python benchmarks/speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    start, load_before = datetime.datetime.now(), os.getloadavg()
    # no global torch.set_num_threads here: vaekit's "threads auto" would take it for a user's choice;
    # every measurement with a fixed count sets it itself
    x_train, x_val, x_test = load_mnist(args.data)
    x_train = x_train[: args.n_train] if args.n_train else x_train
    print("peaks", flush=True)
    with num_threads(1):
        peak = peaks()
    print(peak, "\nthroughput", flush=True)
    rates, compile_timing = throughput(x_train, args)
    with num_threads(1):
        peak_after = peaks()
    p1, p2 = (rates[f"pythae (batch {PYTHAE_BATCH}, {n})"][0] for n in ("1 thread", "2 threads"))
    args.pythae_threads_used = 2 if isinstance(p2, float) and isinstance(p1, float) and p2 > p1 else 1
    print(peak_after, f"\nrace (pythae on {args.pythae_threads_used} thread(s))", flush=True)
    contestants = {DEFAULTS: {}}
    if not args.no_previous:
        contestants[PREVIOUS] = dict(PREVIOUS_SETTINGS)
    for alt in args.alt:
        name, _, settings = alt.partition("=")
        contestants[f"vaekit {name}"] = json.loads(settings)
    result = race(x_train, x_val, args, contestants, args.pythae_threads_used)
    print("nll", flush=True)
    nll = nll_timing(result["models"][DEFAULTS], result["pythae_model"], x_test, args)
    print(nll, "\nmemory", flush=True)
    d = TrainConfig()
    mem = {w: peak_rss(w, args, d.batch_size, d.lr) for w in ("vaekit", "pythae")}
    report = {"command": command, "started": start.isoformat(timespec="seconds"),
              "minutes": (datetime.datetime.now() - start).total_seconds() / 60, "machine": machine(),
              "cpu_kind": cpu_kind(), "load_before": load_before, "load_after": os.getloadavg(),
              "peak_gflops": [peak, peak_after], "cores": os.cpu_count(), "hardware_bf16": cpu_has_fast_bf16(),
              "rates": {k: v[0] for k, v in rates.items()}, "rates_all": {k: v[1] for k, v in rates.items()},
              "compile_first_call_s": compile_timing.get("first_call_s"), "default_name": default_name(),
              "defaults": {k: getattr(d, k) for k in ("batch_size", "lr", "lr_schedule", "lr_warmup", "precision",
                                                       "threads", "epochs")},
              "contestants": contestants, "pythae_threads": args.pythae_threads_used,
              "race": result["rows"], "nll": nll, "rss_mib": mem, "epochs": args.epochs,
              "flops_per_example": train_flops_per_example(), "k": args.k, "memory_steps": f"{args.steps} "}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, render(report))
    print(render(report))
    return 0


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def fmt(v, spec=",.0f"):
    return format(v, spec) if isinstance(v, (int, float)) and math.isfinite(v) else str(v)


def render(r: dict) -> str:
    """The results file: time to quality, evaluation, targets, the measurements behind each default,
    the training curves, raw data."""
    peak32 = statistics.median([p["fp32"] for p in r["peak_gflops"]])
    peak16 = statistics.median([p["bf16"] for p in r["peak_gflops"]])
    rates, fpe, runs, nll = r["rates"], r["flops_per_example"], r["race"], r["nll"]
    v_name = r["default_name"]
    p_name = f"pythae (batch {PYTHAE_BATCH}, {r['pythae_threads']} thread{'s' if r['pythae_threads'] > 1 else ''})"
    v_rate, p_rate = rates[v_name], rates[p_name]
    v, p = runs[DEFAULTS], runs["pythae"]
    used = v[-1]
    amx = bool(r.get("hardware_bf16"))
    d = r["defaults"]
    recipe = (f"batch {d['batch_size']}, AdamW lr {d['lr']:g} with a linear warm-up over {d['lr_warmup']:.0%} of the "
              f"steps then {'a cosine decay' if d['lr_schedule'] == 'cosine' else 'constant'}, precision "
              f"{d['precision']} (here: {used['precision']}), threads {'auto' if d['threads'] == 0 else d['threads']} "
              f"(here: {sorted({row['threads'] for row in v})})")

    def ratio(a, b):
        return f"{b / a:.1f}x" if a and b else ""

    lines = [
        "# Time to a good model and evaluation speed: vaekit vs pythae", "",
        f"Command: `{r['command']}` (run from the repository root)  ",
        f"Date: {r['started']} ({r['minutes']:.1f} min)  ",
        *([f"Text regenerated from the raw measurements below with `{r['rendered_by']}`  "] if "rendered_by" in r else []),
        f"Machine: {r['machine']}  ",
        f"Load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in r['load_before'])}; after: "
        f"{', '.join(f'{x:.2f}' for x in r['load_after'])} on {r.get('cores', '?')} cores. Throughputs are medians of "
        "interleaved repeats and the training runs alternate epochs, so load hits every contestant alike.  ",
        f"Model: 784-{HIDDEN[0]}-{HIDDEN[1]}-{LATENT} MLP VAE, Bernoulli likelihood; static binarized MNIST, 50,000 "
        f"train / 10,000 validation images; {r['epochs']} epochs. vaekit: its defaults ({recipe}). pythae: its own "
        f"trainer at batch {PYTHAE_BATCH}, Adam lr {LR:g}, on {r['pythae_threads']} thread(s) (the faster of 1 and 2 "
        "in the throughput measurement below).", "",
        "## Time to quality", "",
        "Training seconds (validation excluded) until the validation ELBO (one z per example, nats) first reaches "
        "each level; the ratio is pythae's time over vaekit's.", "",
        "| run | " + " | ".join(f"-ELBO <= {lv:.0f} (s)" for lv in LEVELS) + f" | val ELBO after {r['epochs']} epochs | "
        "s/epoch (median) |", "|---|" + "---:|" * (len(LEVELS) + 2)]
    for name, rows in runs.items():
        times = [reach(rows, lv) for lv in LEVELS]
        cells = []
        for lv, t in zip(LEVELS, times, strict=True):
            tp = reach(p, lv)
            cells.append("not reached" if t is None else f"{t:.1f}" + (f" ({ratio(t, tp)})" if name != "pythae" and tp else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {rows[-1]['val_elbo']:.2f} | "
                     f"{statistics.median(epoch_seconds(rows)):.2f} |")
    speed100 = (reach(p) / reach(v)) if reach(v) and reach(p) else None
    bf16_gap = abs(nll["vaekit_bf16_nll"] - nll["vaekit_nll"])
    lines += [
        "", "## Evaluation and memory", "",
        "| | seconds | test NLL (nats) | vs pythae |", "|---|---:|---:|---:|",
        f"| vaekit log_likelihood, k={nll_k(r)}, {nll['n']:,} test images, float32 ({nll['vaekit_threads']} thread(s)) | "
        f"{nll['vaekit_s']:.1f} | {nll['vaekit_nll']:.3f} | {nll['pythae_s'] / nll['vaekit_s']:.1f}x |",
        f"| the same with bf16 networks (`precision=\"bf16\"`), likelihood float32 | {nll['vaekit_bf16_s']:.1f} | "
        f"{nll['vaekit_bf16_nll']:.3f} | {nll['pythae_s'] / nll['vaekit_bf16_s']:.1f}x |",
        f"| pythae get_nll, same k{', timed on ' + format(nll['pythae_measured_on'], ',') + ' images and scaled' if nll['pythae_measured_on'] != nll['n'] else ''} | "
        f"{nll['pythae_s']:.1f} | {nll['pythae_nll']:.3f} | |", "",
        f"The bf16 estimate differs from the float32 one by {bf16_gap:.3f} nats on the same model, images and draws. "
        "vaekit's and pythae's NLLs come from two different trained models (vaekit's default run and pythae's run above).", "",
        f"Peak RSS while training {r['memory_steps']}steps in a child process (MiB): vaekit {rss(r, 'vaekit')}, "
        f"pythae {rss(r, 'pythae')}.", "",
        "## Targets", "",
        f"* Time to validation -ELBO <= {TARGET:.0f} nats at least 5x pythae's (bf16 hardware) / 3x (AVX2 only), final "
        f"ELBO no worse: this CPU has bf16 hardware: {amx}; measured "
        + (f"**{speed100:.1f}x**" if speed100 else "not measurable (a run did not reach it)")
        + f"; final ELBO {v[-1]['val_elbo']:.2f} (vaekit) vs {p[-1]['val_elbo']:.2f} (pythae) nats: "
        + ("met." if speed100 and speed100 >= (5 if amx else 3) and v[-1]["val_elbo"] >= p[-1]["val_elbo"] else "**missed**."),
        f"* Importance-weighted evaluation at least 5x pythae's (bf16 hardware) / 2x (AVX2 only): float32 "
        f"{nll['pythae_s'] / nll['vaekit_s']:.1f}x, bf16 networks {nll['pythae_s'] / nll['vaekit_bf16_s']:.1f}x "
        f"(within 0.05 nats: {bf16_gap < 0.05}): "
        + ("met." if max(nll['pythae_s'] / nll['vaekit_s'], nll['pythae_s'] / nll['vaekit_bf16_s'] if bf16_gap < 0.05 else 0)
           >= (5 if amx else 2) else "**missed**."),
        "", "## Where the time goes", "",
        f"fp32 matmul peak {peak32:.1f} GFLOP/s, bf16 {peak16:.1f} GFLOP/s (torch.mm, 1 thread; before/after: "
        f"{', '.join('{:.1f}/{:.1f}'.format(q['fp32'], q['bf16']) for q in r['peak_gflops'])}). A training example "
        f"costs {fpe / 1e6:.2f} MFLOP of matmuls (forward and backward); the vaekit defaults ran at "
        f"{v_rate * fpe / 1e9:.1f} GFLOP/s."
        if isinstance(v_rate, float) else "", "",
        "Training examples/s, median of interleaved repeats:", "",
        "| setting | examples/s | vs pythae | fraction of fp32 peak | all repeats |", "|---|---:|---:|---:|---|"]
    for name, rate in rates.items():
        ok = isinstance(rate, float)
        rel = f"{rate / p_rate:.2f}" if ok and isinstance(p_rate, float) else ""
        frac = f"{100 * rate * fpe / 1e9 / peak32:.0f}%" if ok and name.startswith("vaekit") else ""
        reps = ", ".join(fmt(x) for x in r["rates_all"][name])
        lines.append(f"| {name} | {fmt(rate)} | {rel} | {frac} | {reps} |")
    if r.get("compile_first_call_s") is not None:
        lines += ["", f"torch.compile: the first call (3 steps, compiling included) took {r['compile_first_call_s']:.1f} s."]
    names = list(runs)
    lines += ["", "## Training runs (epochs interleaved; seconds are cumulative training time, validation excluded)", "",
              "| epoch | " + " | ".join(f"{k} s | {k} val ELBO" for k in names) + " |",
              "|---:|" + "---:|---:|" * len(names)]
    for i in range(len(runs[names[0]])):
        lines.append(f"| {i + 1} | " + " | ".join(f"{runs[k][i]['seconds']:.1f} | {runs[k][i]['val_elbo']:.2f}"
                                                  for k in names) + " |")
    lines += ["", "<details><summary>raw measurements (JSON)</summary>", "", "```json",
              json.dumps(r, indent=1), "```", "</details>", ""]
    return "\n".join(lines)


def rss(r: dict, which: str) -> str:
    """Peak RSS during training, and its rise over the RSS with the data loaded (MiB)."""
    m = r["rss_mib"][which]
    if not isinstance(m, dict):  # the peak alone
        return f"{m:.0f}"
    return f"{m['peak_training']:.0f} (+{m['peak_training'] - m['before_training']:.0f} over data loaded)"


def nll_k(r: dict) -> int:
    return r.get("k", 1000)


def epoch_seconds(rows) -> list[float]:
    cum = [0.0] + [row["seconds"] for row in rows]
    return [b - a for a, b in itertools.pairwise(cum)]


if __name__ == "__main__":
    sys.exit(main())
