"""``vaekit.export(model, path)``: a trained model as separate ONNX graphs plus a model card.

Each graph (``vaekit.serve.graphs``) has a dynamic batch axis, and sampling noise is an input, never
a random operator. After writing, every graph is run with ``onnxruntime`` on random inputs and on real
rows and compared with torch: |onnx - torch| <= 1e-4 + 1e-5 |torch| elementwise, or the export fails.
``format="pt2"`` also writes each graph as a ``torch.export`` program (the successor of TorchScript,
whose tracer is deprecated in PyTorch 2.10+), checked the same way.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from vaekit.serve.card import write_card
from vaekit.serve.graphs import Graph, build_graphs
from vaekit.serve.loading import open_model, served_from
from vaekit.serve.served import Served

ATOL, RTOL = 1e-4, 1e-5
FORMATS = ("onnx", "pt2")


def as_served(model) -> Served:
    """A saved model directory, a ``Served``, a fitted estimator (``VAE``, ``AnomalyDetector``, the
    semi-supervised classifier) or a vaekit model."""
    if isinstance(model, Served):
        return model
    if isinstance(model, (str, Path)):
        return open_model(model)
    return served_from(model)


def example_rows(served: Served, examples, n: int = 64) -> torch.Tensor:
    """Real rows in model space: ``examples`` (user rows), else the run's data, else None."""
    if examples is not None:
        x = examples if isinstance(examples, torch.Tensor) else served.to_model(examples)
        return x[:n].float().clone()
    if served.examples is not None:
        try:
            return served.examples()[0][:n].float().clone()
        except (OSError, ValueError):  # the run's data moved: check on model samples only
            return None
    return None


def random_rows(served: Served, n: int, seed: int) -> torch.Tensor:
    """Rows in the data's support: x ~ p(x|z), z ~ p(z) (or the application's own random rows)."""
    if served.random_rows is not None:
        return served.random_rows(n, seed)
    y = random_condition(served, n, seed)
    return served.decode(served.sample_latent(n, y, seed), y, mean=False).clone()


def random_condition(served: Served, n: int, seed: int) -> torch.Tensor | None:
    g = torch.Generator().manual_seed(seed)
    if served.condition == "label":
        return torch.randint(len(served.class_names), (n,), generator=g)
    if served.condition == "covariates":
        return torch.randn(n, served.condition_size, generator=g)
    return None


def inputs_for(graph: Graph, x: torch.Tensor, seed: int, k: int) -> tuple[torch.Tensor, ...]:
    """One input set for ``graph``: the rows ``x`` and seeded random z, labels and noise of matching batch."""
    if graph.make_inputs is not None:
        return tuple(graph.make_inputs(x, seed, k))
    g = torch.Generator().manual_seed(seed)
    b, out = len(x), []
    for port in graph.inputs:
        if port.name == "x":
            out.append(x)
        elif port.name == "eps":
            out.append(torch.randn(k, b, port.example.shape[-1], generator=g))
        elif port.name == "y" and port.example.dtype == torch.long:
            out.append(torch.randint(int(port.example.max()) + 1, (b,), generator=g))
        else:  # z or covariates: a wide spread, so the decoder is checked beyond the prior's bulk
            out.append(2 * torch.randn(b, *port.example.shape[1:], generator=g))
    return tuple(out)


def dynamic_shapes(graph: Graph) -> tuple:
    dims = {name: torch.export.Dim(name, min=1, max=1 << 20) for name in ("batch", "samples", "length")}
    return (tuple({axis: dims[d] for axis, d in p.dims.items()} for p in graph.inputs),)  # forward(*inputs)


def export_program(graph: Graph):
    args = tuple(p.example for p in graph.inputs)
    with quiet(), unvalidated():
        return torch.export.export(graph.module, args, dynamic_shapes=dynamic_shapes(graph), strict=False)


@contextlib.contextmanager
def unvalidated():
    """Distributions skip their checks on values, which cannot be traced."""
    validate = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)


def write_onnx(graph: Graph, file: Path) -> object:
    """``graph`` as ``file``; returns its torch.export program (None for a ``direct`` graph)."""
    program = None if graph.direct else export_program(graph)
    args = tuple(p.example for p in graph.inputs)
    names = {"input_names": [p.name for p in graph.inputs], "output_names": [n for n, _ in graph.outputs]}
    with quiet(), unvalidated():
        if graph.direct:
            onnx_program = torch.onnx.export(graph.module, args, dynamo=True, dynamic_shapes=dynamic_shapes(graph),
                                             external_data=False, **names)
        else:
            onnx_program = torch.onnx.export(program, args, dynamo=True, external_data=False, **names)
        onnx_program.save(str(file))
    return program


@contextlib.contextmanager
def quiet():
    """The exporter's progress lines and deprecation warnings stay out of the user's terminal."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def compare(name: str, got: list[np.ndarray], want: list[torch.Tensor], what: str) -> float:
    worst = 0.0
    for a, b in zip(got, want):
        b = b.detach().numpy()
        if a.shape != b.shape:
            raise RuntimeError(f"The {name} graph gives shape {a.shape} on {what} where torch gives {b.shape}.")
        if a.dtype == bool or b.dtype == bool:
            frac = float((a != b).mean())
            if frac > 0.01:  # a flag flips only where the score sits on the threshold
                raise RuntimeError(f"The {name} graph's flags differ from torch on {frac:.1%} of {what}.")
            continue
        a, b = a.astype(np.float64), b.astype(np.float64)
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            raise RuntimeError(f"The {name} graph gives NaN where torch does not (or the reverse) on {what}.")
        a, b = np.nan_to_num(a), np.nan_to_num(b)
        excess = np.abs(a - b) - (ATOL + RTOL * np.abs(b))
        worst = max(worst, float(np.max(np.abs(a - b), initial=0.0)))
        if not np.all(excess <= 0):
            raise RuntimeError(f"The {name} graph differs from torch on {what}: max |onnx - torch| = "
                               f"{np.max(np.abs(a - b)):.3g} beyond 1e-4 + 1e-5 |torch|.")
    return worst


def check_graph(graph: Graph, run, x_sets: dict[str, torch.Tensor]) -> dict[str, float]:
    """Max |exported - torch| per input set; raises when any element is beyond the tolerance."""
    out = {}
    noisy = any(p.name == "eps" for p in graph.inputs)
    for what, x in x_sets.items():
        for seed, k in ((0, 1), (1, 7)) if noisy else ((0, 0),):
            args = inputs_for(graph, x, seed, k)
            with torch.inference_mode():
                want = graph.module(*args)
            want = list(want) if isinstance(want, tuple) else [want]
            label = f"{what}, batch {len(x)}" + (f", K={k}" if noisy else "")
            out[label] = compare(graph.name, run(args), want, f"{what} inputs")
    return out


def export(model, path: str | Path, *, format: str = "onnx", examples=None, overwrite: bool = False) -> Path:
    """Write ``path/<graph>.onnx`` for every graph (and ``<graph>.pt2`` with ``format="pt2"``),
    ``path/card.json`` and ``path/MODEL_CARD.md``; returns ``path``. ``examples``: real rows (user
    units) to check the graphs on; by default the run's own data, else samples from the model."""
    import onnxruntime as ort

    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose one of {', '.join(FORMATS)}.")
    served = as_served(model)
    path = Path(path)
    if (path / "card.json").exists() and not overwrite:
        raise ValueError(f"{path} already holds an export; choose another directory or pass overwrite.")
    real = example_rows(served, examples)
    rows = random_rows(served, 5, seed=1)
    sets = {"random": rows, "one random": rows[:1]}
    if real is not None:
        sets["real"] = real
    graphs = build_graphs(served, sets["random"])
    if format == "pt2" and any(g.direct for g in graphs):
        raise ValueError(f"format='pt2' is not available for a {served.source} (its recurrent graphs are written "
                         "by torch.onnx directly); use format='onnx'.")
    path.mkdir(parents=True, exist_ok=True)
    checks = {}
    for graph in graphs:
        names = [p.name for p in graph.inputs]
        file = path / f"{graph.name}.onnx"
        program = write_onnx(graph, file)
        session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        checks[graph.name] = {"onnx": check_graph(
            graph, lambda args, s=session, names=names: s.run(None, {n: a.numpy() for n, a in zip(names, args)}), sets)}
        if format == "pt2":
            torch.export.save(program, str(path / f"{graph.name}.pt2"))
            loaded = torch.export.load(str(path / f"{graph.name}.pt2")).module()

            def run_pt2(args, m=loaded):
                with torch.inference_mode():
                    r = m(*args)
                return [t.numpy() for t in (r if isinstance(r, tuple) else (r,))]

            checks[graph.name]["pt2"] = check_graph(graph, run_pt2, sets)
    write_card(path, served, graphs, checks, format=format)
    return path
