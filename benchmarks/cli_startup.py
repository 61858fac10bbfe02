"""Start-up time of the command line: ``vaekit --help``, ``vaekit train --help`` and ``vaekit info RUN``
(target: under 1.5 s each). Median of repeated runs in fresh processes; the machine's load is printed.

    python benchmarks/cli_startup.py --repeats 7
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


def cpu_model() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def timed(argv: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vaekit", *argv], capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "cli_startup.md"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        subprocess.run([sys.executable, "-m", "vaekit", "train", "digits", "--out", str(run), "--set", "epochs=1",
                        "--set", "progress=false", "--k", "2"], capture_output=True, check=True, env={**os.environ,
                        "OMP_NUM_THREADS": "1"})
        cases = [("vaekit --help", ["--help"]), ("vaekit train --help", ["train", "--help"]),
                 ("vaekit info RUN", ["info", str(run)])]
        rows = [(name, timed(argv, args.repeats)) for name, argv in cases]
    lines = ["# Command-line start-up time", "",
             f"Command: `python benchmarks/cli_startup.py --repeats {args.repeats}`  ",
             f"Date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}  ",
             f"Machine: {cpu_model()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end, "
             f"Python {platform.python_version()}", "",
             "Wall time of a fresh `python -m vaekit ...` process, median and max over the repeats (target: 1.5 s).", "",
             "| command | median (s) | max (s) | under 1.5 s |", "|---|---:|---:|---|"]
    for name, times in rows:
        med = statistics.median(times)
        lines.append(f"| `{name}` | {med:.3f} | {max(times):.3f} | {'yes' if med < 1.5 else 'no'} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
