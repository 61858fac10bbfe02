"""The model card written beside an export: ``card.json`` (for programs) and ``MODEL_CARD.md`` (for
people): what the model is, each graph's inputs and outputs with shapes and units, the preprocessing
from user rows to model rows, the run's metrics, the parity check, and how to call it."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timezone
from pathlib import Path

from vaekit.io import atomic_write
from vaekit.serve.graphs import Graph
from vaekit.serve.served import Served

USAGE = '''```python
import numpy as np
import onnxruntime as ort

encoder = ort.InferenceSession("{path}/encoder.onnx")
decoder = ort.InferenceSession("{path}/decoder.onnx")
x = np.zeros((2, {shape}), np.float32)                 # two rows in model space (see Preprocessing)
loc, scale = encoder.run(None, {{"x": x{y}}})             # posterior mean and standard deviation
z = loc + scale * np.random.default_rng(0).standard_normal(loc.shape).astype(np.float32)
outputs = decoder.run(None, {{{zin}{y}}})                 # {outs}
mean = outputs[-1]                                       # E[x|z], shape (2, {shape})
```'''


def numbers(metrics: dict) -> list[str]:
    """The headline metrics as lines; every density in nats per example."""
    lines = []
    ev, tr = metrics.get("evaluation", {}), metrics.get("training", {})
    for label, key in (("test ELBO", "elbo"), ("test log p(x) (IWAE)", "log_likelihood"), ("KL", "kl"),
                       ("bits/dim", "bits_per_dim"), ("active units", "active_units"), ("importance samples k", "k")):
        if key in ev:
            v = ev[key]
            lines.append(f"- {label}: {v:.4f}" if isinstance(v, float) else f"- {label}: {v}")
    if ev.get("units"):
        lines.append(f"- units: {ev['units']}")
    for key in ("epochs", "seconds", "n_train", "n_test"):
        if key in tr:
            lines.append(f"- training {key}: {tr[key]}")
    for key, value in metrics.items():
        if key not in ("evaluation", "training") and value is not None:
            lines.append(f"- {key}: {value}")
    return lines or ["- none recorded"]


def write_card(path: Path, served: Served, graphs: list[Graph], checks: dict, *, format: str) -> None:
    info = served.info()
    card = {"format": "vaekit-export", "format_version": 1, "created": datetime.now(timezone.utc).isoformat(),
            "model": info, "preprocessing": served.preprocessing,
            "graphs": {g.name: {"file": f"{g.name}.onnx",
                                "inputs": [{"name": p.name, "doc": p.doc, "dynamic_axes": p.dims} for p in g.inputs],
                                "outputs": [{"name": n, "doc": d} for n, d in g.outputs]} for g in graphs},
            "parity": {"rule": "|exported - torch| <= 1e-4 + 1e-5 |torch| elementwise", "max_abs_error": checks},
            "formats": ["onnx"] + (["pt2"] if format == "pt2" else [])}
    atomic_write(path / "card.json", lambda p: p.write_text(json.dumps(card, indent=2, default=str)))
    if served.usage:  # an application's own graphs and loop
        usage = served.usage.format(path=path.name, latent_dim=served.latent_dim, **served.details)
    else:
        usage = default_usage(path, served, graphs)
    cond = served.condition
    lines = [f"# Model card: {served.name}", "",
             f"Exported by vaekit from a {served.source} ({datetime.now(timezone.utc):%Y-%m-%d}). Every graph is a "
             "separate ONNX file with a dynamic batch axis B; sampling noise is an input (`eps`), never a random "
             "operator, so every output is a deterministic function of the inputs.", "",
             "## What the model is", "",
             f"- latent dimension {served.latent_dim} (layers {list(served.layer_sizes)}, top first), "
             f"event shape {list(served.event_shape)}",
             f"- likelihood {info['likelihood']}, prior {info['prior']}",
             f"- densities: {served.unit}",
             *[f"- {k}: {v}" for k, v in served.details.items() if not isinstance(v, (list, dict))],
             *([f"- conditional on a label y, index into {served.class_names}"] if cond == "label" else []),
             *([f"- conditional on {served.condition_size} covariates y"] if cond == "covariates" else []), "",
             "## Graphs", ""]
    for g in graphs:
        lines += [f"### `{g.name}.onnx`", "", "| | name | shape, type and meaning |", "|---|---|---|"]
        lines += [f"| input | `{p.name}` | {p.doc} |" for p in g.inputs]
        lines += [f"| output | `{n}` | {d} |" for n, d in g.outputs]
        lines.append("")
    lines += ["## Preprocessing: user rows to model rows", "",
              served.preprocessing.get("how", "none"), "",
              "The statistics and category lists are in `card.json` under `preprocessing`. "
              f"A user row is {served.rows.describe()}.", "",
              "## Metrics of the run", "", *numbers(served.metrics), "",
              "## Parity with torch", "",
              "Each graph was run with onnxruntime on random inputs (rows drawn from the model, z with standard "
              "deviation 2, standard normal noise) and on real rows, and compared with torch: "
              "|onnx - torch| <= 1e-4 + 1e-5 |torch| for every element. Largest absolute differences:", ""]
    for name, by_format in checks.items():
        for fmt, sets in by_format.items():
            lines.append(f"- {name} ({fmt}): " + ", ".join(f"{k}: {v:.2g}" for k, v in sets.items()))
    lines += ["", "## Calling it from onnxruntime", "", usage, ""]
    if any(g.name == "score" for g in graphs):
        score = next(g for g in graphs if g.name == "score")
        lines += ["The score graph takes K draws of standard normal noise per row, `eps` of shape (K, B, L); "
                  f"its outputs: {', '.join(f'`{n}` ({d})' for n, d in score.outputs)}.", ""]
    atomic_write(path / "MODEL_CARD.md", lambda p: p.write_text("\n".join(lines)))


def default_usage(path: Path, served: Served, graphs: list[Graph]) -> str:
    """Encoder then decoder from onnxruntime, for models of rows of numbers."""
    shape = ", ".join(map(str, served.event_shape))
    y = ', "y": y' if served.condition else ""
    decoder = next(g for g in graphs if g.name == "decoder")
    zin = '"z": z' if len(served.layer_sizes) == 1 else ", ".join(f'"{p.name}": z[:, {a}:{a + p.example.shape[1]}]'
                    for p, a in zip([p for p in decoder.inputs if p.name != "y"],
                                    [0, *itertools.accumulate(served.layer_sizes)]))
    return USAGE.format(path=path.name, shape=shape, y=y, zin=zin, outs=", ".join(n for n, _ in decoder.outputs))
