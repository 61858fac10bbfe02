"""The model's functions as plain tensor-in, tensor-out modules, ready for ONNX export.

- encoder: x [, y] -> posterior ``loc``, ``scale`` (B, L); deterministic, no sampling in the graph.
- decoder: z (one input per stochastic layer, top first) [, y] -> the likelihood's parameters (e.g.
  ``logits``; ``loc`` and ``scale``) and ``mean`` = E[x|z].
- score: x [, y], eps (K, B, L) -> ``log_px`` (B,), the importance-weighted log p(x) (Burda et al.
  2015, eq. 8) in nats of the user's units, z_i = loc + scale * eps_i: the noise is an input.
- classifier (models with q(y|x), e.g. M2): x -> class ``logits``.
- sampler (M1+M2, ``vaekit.serve.semisupervised``): M2's z, y -> M1's code z1 and E[x|z1]; handed
  over as ``Served.extra_graphs``.
- detector score (``vaekit.serve.detector.DetectorScore``): x, eps -> ``score``, ``flag``; the detector
  module builds it and hands it over as ``Served.score_graph``, so this module never imports it.
Every graph's first axis is a dynamic batch axis (eps: samples, then batch). Applications with
graphs of their own (``vaekit.serve.recommender``, ``vaekit.serve.molecules``) hand them over as
``Served.export_graphs``. Each module's ``forward``
takes its inputs positionally (``*inputs``), in the order of the graph's ports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from vaekit.serve.served import Served

PARAM_NAMES = ("loc", "scale", "logits", "probs", "rate", "total_count", "concentration")


def distribution_params(likelihood: nn.Module, px: Distribution) -> dict[str, torch.Tensor]:
    """The tensors that define p(x|z): ``likelihood.params(px)`` when the likelihood defines it, else
    the arguments the torch distribution was built from (``logits`` of a Bernoulli, not its lazily
    derived ``probs``), else its tensor attributes among the usual parameter names."""
    if hasattr(likelihood, "params"):
        return dict(likelihood.params(px))
    base = px.base_dist if isinstance(px, Independent) else px
    given = {n: vars(base)[n] for n in getattr(type(base), "arg_constraints", {}) if n in vars(base)}
    if not given:
        given = {n: getattr(base, n) for n in PARAM_NAMES if isinstance(getattr(base, n, None), torch.Tensor)}
    batch, full = tuple(px.batch_shape), len(px.batch_shape) + len(px.event_shape)
    # a parameter shared by every row (a learned scale) gets the batch axes, so each output has one per row;
    # decided on the number of dimensions, never on sizes, which are symbolic while exporting
    return {n: t if t.dim() >= full else t.expand(*batch, *t.shape)
            for n, t in given.items() if isinstance(t, torch.Tensor)}


@dataclass
class Port:
    name: str
    example: torch.Tensor
    dims: dict  # axis -> "batch" / "samples": the dynamic axes
    doc: str


@dataclass
class Graph:
    name: str  # file stem: encoder, decoder, score, classifier
    module: nn.Module
    inputs: list[Port]
    outputs: list[tuple[str, str]]  # (name, what it is)
    notes: list[str] = field(default_factory=list)
    # (rows x, seed, k) -> the graph's inputs for a check; None: rows for "x", seeded noise, labels and z
    make_inputs: Callable | None = None
    # export with torch.onnx from the module itself: nn.GRU stays one ONNX GRU op with a dynamic length,
    # where a torch.export program unrolls it over the example's length (no pt2 file then)
    direct: bool = False


class Encoder(nn.Module):
    def __init__(self, model: nn.Module, conditional: bool, fill_missing: bool = False):
        super().__init__()
        self.model, self.conditional, self.fill_missing = model, conditional, fill_missing

    def forward(self, *inputs):  # x [, y]
        x = torch.nan_to_num(inputs[0], nan=0.0) if self.fill_missing else inputs[0]  # NaN: a missing cell
        q = self.model.encode(x, inputs[1] if self.conditional else None)
        base = q.base_dist if isinstance(q, Independent) else q
        return base.loc, base.scale


class Decoder(nn.Module):
    def __init__(self, model: nn.Module, n_layers: int, conditional: bool, names: list[str]):
        super().__init__()
        self.model, self.n_layers, self.conditional, self.names = model, n_layers, conditional, names

    def forward(self, *inputs):
        z = torch.cat(inputs[: self.n_layers], -1)  # the latent vector, top layer first
        px = self.model.decode(z, inputs[self.n_layers] if self.conditional else None)
        params = distribution_params(self.model.likelihood, px)
        return (*(params[n] for n in self.names), self.model.likelihood.mean(px))


class RowShift(nn.Module):
    """x (B, ...) -> (B,) nats to add to a model-space log-density: ``const`` plus -log std of each
    standardised value that is observed (not NaN), the log-Jacobian of the preprocessing."""

    def __init__(self, *, at: list[int] = (), log_scale: list[float] = (), const: float = 0.0):
        super().__init__()
        self.register_buffer("at", torch.tensor(list(at), dtype=torch.long))
        self.register_buffer("log_scale", torch.tensor(list(log_scale), dtype=torch.float32))
        self.const = float(const)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        if not len(self.at):
            return flat.new_full(flat.shape[:1], self.const)
        seen = torch.isfinite(flat.index_select(1, self.at)).float()
        return self.const - (seen * self.log_scale).sum(-1)


class Score(nn.Module):
    def __init__(self, model: nn.Module, conditional: bool, shift: RowShift, fill_missing: bool = False):
        super().__init__()
        self.model, self.conditional, self.shift, self.fill_missing = model, conditional, shift, fill_missing

    def forward(self, *inputs):  # x [, y], eps
        x, y, eps = inputs[0], (inputs[1] if self.conditional else None), inputs[-1]
        q = self.model.encode(torch.nan_to_num(x, nan=0.0) if self.fill_missing else x, y)
        loc, scale = q.base_dist.loc, q.base_dist.scale
        qz = Independent(Normal(loc, scale, validate_args=False), 1)
        z = loc + scale * eps  # (K, B, L)
        log_w = self.model.decode(z, y).log_prob(x) + self.model.prior().log_prob(z) - qz.log_prob(z)
        return log_mean_exp(log_w) + self.shift(x)


def log_mean_exp(log_w: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_i exp(log_w_i) over the first axis; K is read from the tensor, so the number of
    samples stays a dynamic axis of the exported graph."""
    return torch.logsumexp(log_w, 0) - torch.log(torch.ones_like(log_w).sum(0))


class Classifier(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *inputs):  # x
        return self.model.classify(inputs[0]).logits


def condition_port(served: Served, b: int) -> list[Port]:
    if served.condition == "label":
        y = torch.arange(b) % max(1, len(served.class_names))
        return [Port("y", y, {0: "batch"}, f"int64 (B,): label index into {served.class_names[:10]}")]
    if served.condition == "covariates":
        return [Port("y", torch.randn(b, served.condition_size), {0: "batch"},
                     f"float32 (B, {served.condition_size}): covariates")]
    return []


def build_graphs(served: Served, x_example: torch.Tensor) -> list[Graph]:
    """Every graph the model has, with example inputs (batch 3) drawn from ``x_example``."""
    if served.export_graphs is not None:  # an application's own graphs, built by its module
        return served.export_graphs(served, x_example)
    model, b, k = served.model, 3, 4
    x = x_example[:b].clone()
    event = list(served.event_shape)
    cond = condition_port(served, b)
    conditional = bool(cond)
    L = served.latent_dim
    x_port = Port("x", x, {0: "batch"}, f"float32 (B, {', '.join(map(str, event))}): rows in model space")
    if served.rows.missing:
        x_port.doc += "; NaN marks a missing cell"
    graphs = [Graph("encoder", Encoder(model, conditional, served.rows.missing), [x_port, *cond],
                    [("loc", f"float32 (B, {L}): posterior mean of the latent vector"),
                     ("scale", f"float32 (B, {L}): posterior standard deviation")])]
    sizes = served.layer_sizes
    z_names = ["z"] if len(sizes) == 1 else [f"z{len(sizes) - i}" for i in range(len(sizes))]
    zs = [Port(n, torch.randn(b, s), {0: "batch"}, f"float32 (B, {s}): " + (
        "latent vector" if len(sizes) == 1 else f"layer {i + 1} of {len(sizes)}, top first"))
        for i, (n, s) in enumerate(zip(z_names, sizes))]
    with torch.inference_mode():
        px = model.decode(torch.cat([p.example for p in zs], -1), cond[0].example if cond else None)
        params = distribution_params(model.likelihood, px)
    names = [n for n in params if n not in ("mean", *z_names, "y")]
    outs = [(n, f"float32 {list(params[n].shape[1:])} per row: the {type(model.likelihood).__name__}'s {n}")
            for n in names]
    graphs.append(Graph("decoder", Decoder(model, len(sizes), conditional, names), [*zs, *cond],
                        [*outs, ("mean", f"float32 (B, {', '.join(map(str, event))}): E[x|z] in model space")]))
    eps = Port("eps", torch.randn(k, b, L), {0: "samples", 1: "batch"},
               f"float32 (K, B, {L}): standard normal noise, one draw per importance sample")
    if served.score_graph is not None:  # an application's own score (a detector's), built by its module
        graphs.append(served.score_graph(served, x_port, eps))
    elif len(sizes) == 1:
        graphs.append(Graph("score", Score(model, conditional, RowShift(**served.shift_terms), served.rows.missing), [x_port, *cond, eps],
                            [("log_px", "float32 (B,): importance-weighted log p(x) in nats, user units; "
                                        "K = 1000 gives the service's precision")]))
    if hasattr(model, "classify"):
        graphs.append(Graph("classifier", Classifier(model), [x_port],
                            [("logits", f"float32 (B, {len(served.class_names)}): log q(y|x) up to a constant")]))
    if served.extra_graphs is not None:  # an application's further graphs (M1+M2's sampler), built by its module
        graphs += served.extra_graphs(served, b)
    return graphs
