"""What every benchmark writes beside its numbers: the command, the date, the machine (CPU model and
flags from ``lscpu``, threads, versions) and the load; and one atomic writer for results files.

Imported by the scripts in this folder (``python benchmarks/<name>.py`` puts the folder on sys.path).
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import torch

try:
    from vaekit.atomic import atomic_write
except ImportError:  # vaekit <= 0.1 (benchmarks/reproduce.py runs this harness on the previous release)
    from vaekit.io import atomic_write

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATA = ROOT.parent / "shared" / "data"
FLAGS = ("avx2", "avx512_bf16", "amx_bf16")


def lscpu() -> dict[str, str]:
    """``lscpu`` as a dict (empty when lscpu is missing)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}


def cpu() -> str:
    """CPU model and which of the flags that decide our kernels (avx2/avx512_bf16/amx_bf16) it has."""
    info = lscpu()
    model = info.get("Model name") or platform.processor() or "unknown CPU"
    flags = set(info.get("Flags", "").split())
    return f"{model} (flags: " + ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in FLAGS) + ")"


def machine(device: str = "cpu") -> str:
    """One line: CPU, torch threads of the cores we may use, the GPU when ``device`` is one, versions."""
    gpu = f"; GPU {torch.cuda.get_device_name(torch.device(device))}" if device.startswith("cuda") else ""
    return (f"{cpu()}; {torch.get_num_threads()} torch thread(s) of {len(os.sched_getaffinity(0))} cores "
            f"(shared with other jobs){gpu}; torch {torch.__version__}; Python {platform.python_version()}")


def gpu_name(machine_line: str) -> str | None:
    """The GPU a ``machine()`` line names, or None for a CPU-only line."""
    for part in machine_line.split("; "):
        if part.startswith("GPU "):
            return part[4:]
    return None


def command(argv: list[str] | None = None) -> str:
    """The command line that ran this script, as the user would type it."""
    args = sys.argv[1:] if argv is None else argv
    script = Path(sys.argv[0]).resolve()
    if script.is_relative_to(ROOT):
        script = script.relative_to(ROOT)
    return "python " + " ".join(shlex.quote(a) for a in [str(script), *args])


def now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def load() -> str:
    return "load average (1, 5, 15 min): " + ", ".join(f"{v:.1f}" for v in os.getloadavg())


def header(title: str, argv: list[str] | None, wall_s: float) -> list[str]:
    """The first lines of a results file."""
    return [f"# {title}", "", f"Command: `{command(argv)}`  ", f"Date: {now()}  ", f"Machine: {machine()}  ",
            f"Wall time: {wall_s / 60:.1f} min; {load()} at the end", ""]


def write(path: str | Path, lines: list[str]) -> Path:
    """The results file, written atomically, ending in one newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines).rstrip("\n") + "\n"
    return atomic_write(path, lambda p: Path(p).write_text(text, encoding="utf-8"))
