"""When does bf16 autocast pay on this CPU? Training steps per second of MLP VAEs (784 inputs, Bernoulli,
two hidden layers of width H, latent 32) in float32 and in bf16 autocast, side by side in one process,
for several widths and batch sizes. The rule behind ``precision="auto"`` (``vaekit.runtime``) is
calibrated on this table: bf16 only where the CPU multiplies bf16 in hardware and the model's matmul
work per step is large enough for it to be faster.

    python benchmarks/precision.py --seconds 2
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from vaekit import ModelConfig, build_model
from vaekit.objectives import elbo
from vaekit.runtime import autocast, cpu_has_fast_bf16, matmul_work


def cpu() -> tuple[str, str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                 platform.processor())
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return model, " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)


def steps_per_second(width: int, batch: int, dtype, seconds: float) -> tuple[float, int]:
    torch.manual_seed(0)
    model = build_model(ModelConfig(input_shape=(784,), latent_dim=32, hidden=(width, width)))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x = (torch.rand(batch, 784) > 0.5).float()
    device = torch.device("cpu")

    def step():
        with autocast(device, dtype):
            loss = elbo(model, x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n / (time.perf_counter() - t0), matmul_work(model, batch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--widths", default="64,256,512,1024,2048")
    ap.add_argument("--batches", default="64,128,512")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model_name, flags = cpu()
    rows = []
    for width in map(int, args.widths.split(",")):
        for batch in map(int, args.batches.split(",")):
            fp32, work = steps_per_second(width, batch, None, args.seconds)
            bf16, _ = steps_per_second(width, batch, torch.bfloat16, args.seconds)
            rows.append((width, batch, work, fp32, bf16))
            print(f"width {width} batch {batch}: work {work / 1e6:.1f} M MAC/step, fp32 {fp32:.1f}/s, bf16 {bf16:.1f}/s")
    slug = "amx" if "amx_bf16" in flags else ("avx512bf16" if "avx512_bf16" in flags else "avx2")
    out = Path(args.out or Path(__file__).parent / "results" / f"precision_{slug}.md")
    lines = ["# bf16 autocast against float32, training steps per second", "",
             f"Command: `python benchmarks/precision.py --seconds {args.seconds} --widths {args.widths} "
             f"--batches {args.batches}`  ", f"Date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}  ",
             f"Machine: {model_name} (flags: {flags}); fast bf16 detected: {cpu_has_fast_bf16()}; 1 torch thread; "
             f"load average {os.getloadavg()[0]:.2f} at the end; torch {torch.__version__}", "",
             "MLP VAE 784-H-H-32, Bernoulli, AdamW; work = multiply-accumulates of the linear layers per "
             "forward pass (batch x sum of in x out). fp32 and bf16 run side by side, one after the other.", "",
             "| hidden H | batch | work (M MAC) | fp32 steps/s | bf16 steps/s | bf16 / fp32 |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {w} | {b} | {m / 1e6:.1f} | {f:.1f} | {h:.1f} | {h / f:.2f} |" for w, b, m, f, h in rows]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
