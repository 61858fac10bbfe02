"""Serving benchmark: train a digits run, export it to ONNX, serve it with `vaekit serve` (a real uvicorn
process on loopback) and measure latency and throughput under concurrent load; also in-process torch
vs onnxruntime timings, and the explorer screenshot for the README.

    python benchmarks/serve.py                         # 2,000 requests from 8 clients
    python benchmarks/serve.py --requests 400 --clients 4 --run runs/digits --no-screenshot

Writes benchmarks/results/serve.md, benchmarks/results/serve_readme_section.md and docs/images/explorer.png.
Every number in those files is measured by this script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CHROMIUM = "/usr/bin/chromium"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def commit() -> str:
    """The commit of the vaekit that ran (the imported package's repository), marked when it had changes."""
    import vaekit

    where = Path(vaekit.__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=where,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
                               capture_output=True, text=True, cwd=where, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"unknown (vaekit from {where})"
    return rev + (" with uncommitted changes to the library" if dirty else "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(run: Path) -> None:
    from vaekit.run import resolve_config, train_run

    cfg = resolve_config(data="digits", sets=["progress=false"])  # the built-in defaults: 80 epochs
    train_run(cfg, run, eval_k=100, pictures=False)


def start_server(run: Path, port: int) -> subprocess.Popen:
    import httpx

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vaekit.serve.cli", "serve", str(run), "--port", str(port),
                             "--log-level", "warning"], env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("vaekit serve did not start within 120 s")


def requests_mix(x: list, latent_dim: int) -> list[tuple[str, dict]]:
    """The mix each client cycles through: 8 rows per request (k = 100 importance samples for /score)."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((8, latent_dim)).round(4).tolist()
    return [("/encode", {"x": x}), ("/decode", {"z": z}), ("/sample", {"n": 8, "seed": 1}),
            ("/reconstruct", {"x": x}), ("/score", {"x": x, "k": 100})]


def load(url: str, mix, n_requests: int, n_clients: int) -> dict:
    """``n_requests`` POSTs from ``n_clients`` threads, each with its own keep-alive connection."""
    import httpx

    per, lock, records = n_requests // n_clients, threading.Lock(), []

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            for j in range(per):
                path, body = mix[(i + j) % len(mix)]
                t0 = time.perf_counter()
                try:
                    ok = c.post(path, json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    records.append((path, time.perf_counter() - t0, ok))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    out = {"requests": len(records), "clients": n_clients, "seconds": wall, "rps": len(records) / wall,
           "errors": sum(not ok for _, _, ok in records), "by_path": {}}
    for path in [None] + [p for p, _ in mix]:
        lat = np.array([t for p, t, _ in records if path is None or p == path]) * 1000
        out["by_path"][path or "all"] = {"n": len(lat), "p50": float(np.percentile(lat, 50)),
                                         "p99": float(np.percentile(lat, 99)), "mean": float(lat.mean())}
    return out


def in_process(run: Path, onnx_dir: Path) -> list[dict]:
    """Median time per call of the encoder and the score, torch vs onnxruntime, one thread."""
    import onnxruntime as ort
    import torch

    from vaekit.evaluate import log_likelihood
    from vaekit.serve.loading import open_model

    served = open_model(run)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    enc = ort.InferenceSession(str(onnx_dir / "encoder.onnx"), options, providers=["CPUExecutionProvider"])
    score = ort.InferenceSession(str(onnx_dir / "score.onnx"), options, providers=["CPUExecutionProvider"])
    x_all = served.examples()[0]
    rows = []

    def median(fn, reps=30):
        fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times)) * 1000

    for b in (1, 64):
        x = x_all[:b]
        eps = np.random.default_rng(0).standard_normal((100, b, served.latent_dim)).astype(np.float32)
        with torch.inference_mode():
            rows.append({"what": f"encoder, batch {b}", "torch": median(lambda x=x: served.model.encode(x)),
                         "onnx": median(lambda x=x: enc.run(None, {"x": x.numpy()}))})
        rows.append({"what": f"log p(x) with K=100, batch {b}",
                     "torch": median(lambda x=x: log_likelihood(served.model, x, k=100), reps=10),
                     "onnx": median(lambda x=x, eps=eps: score.run(None, {"x": x.numpy(), "eps": eps}), reps=10)})
    return rows


def screenshot(url: str, path: Path) -> bool:
    if not Path(CHROMIUM).exists():
        print(f"no {CHROMIUM}: skipping the explorer screenshot")
        return False
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                     "--disable-background-networking",
                                                                     "--disable-component-update"])
        page = browser.new_page(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
        page.goto(url + "/explore")
        page.wait_for_function("Number(document.getElementById('decoded').dataset.version) >= 1", timeout=30000)
        page.locator("#map circle").nth(3).dispatch_event("click")
        page.wait_for_selector("#point-panel:not([hidden]) #point-example canvas")
        page.click("#set-a")
        page.locator("#map circle").nth(17).dispatch_event("click")
        page.wait_for_selector("#point-index:text('17')")
        page.click("#set-b")
        page.wait_for_function("document.querySelectorAll('#interp canvas').length === 8")
        page.locator("#sliders input").nth(1).evaluate(
            "el => { el.value = '1.5'; el.dispatchEvent(new Event('input', {bubbles: true})); }")
        page.wait_for_timeout(500)
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        browser.close()
    return True


def write_results(args, run: Path, evaluation: dict, card: dict, result: dict, timings: list[dict], seconds: dict,
                  shot: bool) -> None:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python benchmarks/serve.py " + " ".join(sys.argv[1:])
    parity = max(v for g in card["parity"]["max_abs_error"].values() for sets in g.values() for v in sets.values())
    rows = "\n".join(f"| `{p}` | {r['n']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['mean']:.1f} |"
                     for p, r in result["by_path"].items())
    speed = "\n".join(f"| {t['what']} | {t['torch']:.2f} | {t['onnx']:.2f} |" for t in timings)
    text = f"""# Serving benchmark

Command: `{command.strip()}`
Date: {now}; vaekit at commit {commit()}. CPU: {cpu_model()} ({os.cpu_count()} cores
visible, shared with other work); Python {platform.python_version()};
the service runs torch with one thread (`OMP_NUM_THREADS=1`), one uvicorn worker.

Model: `vaekit train digits` with the built-in defaults ({evaluation.get('n_examples', '?')} test digits:
test ELBO {evaluation.get('elbo', float('nan')):.2f} nats, log p(x) {evaluation.get('log_likelihood', float('nan')):.2f} nats).
Training took {seconds['train']:.1f} s, `vaekit export --format onnx` {seconds['export']:.1f} s (three graphs; largest
|onnx - torch| over every output, random and real inputs: {parity:.2g}).

## HTTP load

`vaekit serve` as its own process on 127.0.0.1; {result['clients']} concurrent clients (threads, one keep-alive
connection each) send {result['requests']} POST requests cycling through the mix below, 8 rows per request
(`/score`: k = 100 importance samples per row). Latency is per request, measured by the client.

- requests/s: **{result['rps']:.0f}** ({result['requests']} requests in {result['seconds']:.1f} s)
- errors (non-200 or transport): **{result['errors']}**

| route | requests | p50 ms | p99 ms | mean ms |
|---|---|---|---|---|
{rows}

## In process: torch vs onnxruntime (median ms per call, one thread)

| call | torch | onnxruntime |
|---|---|---|
{speed}
"""
    (RESULTS / "serve.md").write_text(text)
    overall = result["by_path"]["all"]
    section = f"""## Use a trained model elsewhere

Export a run as ONNX, serve it over HTTP, or explore its latent space in the browser. The commands work on
any run directory, and on a directory saved by `vaekit.VAE`, `AnomalyDetector` or the semi-supervised
classifier (M2).

```bash
vaekit export runs/digits --format onnx --out model/    # encoder, decoder, score graphs + MODEL_CARD.md
vaekit serve runs/digits --host 127.0.0.1 --port 8000   # JSON API; OpenAPI schema at /docs
vaekit explore runs/digits                              # the same service, opened at /explore
```

- **Export** (`vaekit.export(model, path)` in Python): the encoder (x -> posterior `loc`, `scale`), the
  decoder (z -> the likelihood's parameters and `mean`) and the scoring function (x, noise `eps` -> log p(x)
  in nats; for a detector its score and flag) as separate ONNX graphs with a dynamic batch axis. Sampling
  noise is an input, never a random operator. Each graph is checked against torch with onnxruntime
  (|onnx - torch| <= 1e-4 + 1e-5 |torch|) on random and real rows before the export is written; the
  model card says what every input and output is, the preprocessing, the run's metrics, and how to call it.
- **Serve**: `POST /encode {{"x": [...]}}`, `/decode {{"z": [...]}}`, `/sample {{"n": 16, "seed": 0}}`,
  `/reconstruct`, `/score` (log p(x) in nats), `/detect` for detectors; `GET /health`, `/info`. Rows are
  sent as the model was fitted (images as nested arrays, table rows in their original columns); a bad
  request gets a 4xx with one sentence, and no request can read a file.

```bash
curl -s localhost:8000/sample -H 'content-type: application/json' -d '{{"n": 2, "seed": 0}}'
```

Measured by `benchmarks/serve.py` ({now}, {cpu_model()}, one torch thread, one worker): {result['requests']}
requests from {result['clients']} concurrent clients, 8 rows each, **{result['rps']:.0f} requests/s**, p50
{overall['p50']:.1f} ms, p99 {overall['p99']:.1f} ms, {result['errors']} errors
([full table](benchmarks/results/serve.md)).

![the latent explorer: a map of encoded digits, sliders, a point and its reconstruction, an interpolation](docs/images/explorer.png)

The explorer: one slider per latent dimension (the most active first) decodes live; the map shows the
encoded test rows coloured by label; clicking a point shows it and its reconstruction; two chosen points
are interpolated. Table runs show decoded rows as tables. The page loads nothing from the internet.
"""
    (RESULTS / "serve_readme_section.md").write_text(section)
    print(text)
    if not shot:
        print("(the README section points at docs/images/explorer.png, which this run did not write)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="an existing digits run (default: train one in a temp dir)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--no-screenshot", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from vaekit.serve.export import export

    tmp = Path(tempfile.mkdtemp(prefix="vaekit-serve-bench-"))
    run, seconds = args.run, {}
    t0 = time.perf_counter()
    if run is None:
        run = tmp / "digits"
        train(run)
    seconds["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    export(run, tmp / "onnx")
    seconds["export"] = time.perf_counter() - t0
    card = json.loads((tmp / "onnx" / "card.json").read_text())
    evaluation = json.loads((run / "evaluation.json").read_text())
    port = free_port()
    proc = start_server(run, port)
    url = f"http://127.0.0.1:{port}"
    try:
        from vaekit.serve.loading import open_model

        served = open_model(run)
        x = served.examples()[0][:8].reshape(8, -1).numpy().round(4).tolist()
        mix = requests_mix(x, served.latent_dim)
        load(url, mix, 100, args.clients)  # warm-up, not reported
        result = load(url, mix, args.requests, args.clients)
        shot = False if args.no_screenshot else screenshot(url, ROOT / "docs" / "images" / "explorer.png")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    timings = in_process(run, tmp / "onnx")
    write_results(args, run, evaluation, card, result, timings, seconds, shot)


if __name__ == "__main__":
    main()
