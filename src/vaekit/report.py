"""``report.html``: one self-contained page (pictures embedded as base64, no scripts, nothing loaded
from elsewhere) that explains a run: every number with its unit and what good looks like, train /
validation / test side by side, the best and last epochs, when and on what the run was made, the
pictures with headings that fit the data (images, table rows or other arrays) and the config.

The page helpers (``Number``, ``numbers_table``, ``figure``, ``page``, ``environment``) are shared
with the applications' reports (e.g. ``vaekit.apps.anomaly.report``).
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from vaekit.io import atomic_write

if TYPE_CHECKING:
    from vaekit.config import TrainConfig

STYLE = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222;"
         "line-height:1.4}table{border-collapse:collapse;margin:.5em 0 1em}"
         "td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
         "td.v{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}th{background:#f4f4f4}"
         "td.g{color:#555;font-size:.92em}table.n{width:100%}td.t{font-size:.92em}figure{margin:1em 0 2em}"
         "figcaption{color:#444;font-size:.95em;max-width:900px}img{max-width:100%;border:1px solid #ccc}"
         "img.px{image-rendering:pixelated}"
         "pre{background:#f6f6f6;padding:1em;overflow:auto}.note{background:#fff6e0;border-left:4px solid "
         "#e0a000;padding:.5em 1em}")
PRECISIONS = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
DISCRETE = {"bernoulli", "categorical", "poisson", "negative_binomial", "multinomial"}
FAMILIES = {"vae": "VAE", "hierarchical": "hierarchical VAE", "m2": "semi-supervised (M2) VAE"}
NOUNS = {"image": "image", "table": "row"}  # anything else: "example"


# -- page helpers -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Number:
    """One row of a numbers table: what it is, its value, its unit and what good looks like."""

    label: str
    value: object  # a float, an int or already formatted text
    unit: str
    guide: str


def fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "not recorded"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.2f}" if 1e3 <= abs(v) < 1e9 else f"{v:.4g}"
    return str(v)


def esc(v) -> str:
    return html.escape(fmt(v))


def numbers_table(rows: list[Number]) -> str:
    def cell(v) -> str:  # numbers right-aligned; long text (a list of values) wraps
        return f"<td class='{'t' if isinstance(v, str) and len(v) > 24 else 'v'}'>{esc(v)}</td>"

    body = "".join(f"<tr><th>{html.escape(r.label)}</th>{cell(r.value)}<td>{html.escape(r.unit)}</td>"
                   f"<td class='g'>{html.escape(r.guide)}</td></tr>" for r in rows)
    return ("<table class='n'><colgroup><col style='width:22%'><col style='width:14%'><col style='width:24%'>"
            "<col></colgroup><tr><th>Quantity</th><th>Value</th><th>Unit</th><th>What good looks like</th></tr>"
            f"{body}</table>")


def facts_table(rows: list[tuple[str, object]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows) + "</table>"


def figure(path: Path, heading: str, caption: str, *, pixelated: bool = False) -> str:
    """A heading, the PNG embedded as base64 and its caption; '' when the file does not exist."""
    if not path.exists():
        return ""
    b64 = base64.b64encode(path.read_bytes()).decode("ascii")
    cls = " class='px'" if pixelated else ""
    return (f"<h2>{html.escape(heading)}</h2><figure><img{cls} alt='{html.escape(heading)}' "
            f"src='data:image/png;base64,{b64}'><figcaption>{html.escape(caption)}</figcaption></figure>")


def note(text: str) -> str:
    return f"<p class='note'>{html.escape(text)}</p>"


def page(title: str, parts: list[str]) -> str:
    return "\n".join([f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{html.escape(title)}</title>",
                      f"<style>{STYLE}</style><h1>{html.escape(title)}</h1>", *parts, "</html>"])


def write_page(path: Path, title: str, parts: list[str]) -> Path:
    text = page(title, parts)
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def environment(device, *, precision: str = "auto", threads: int = 0) -> dict:
    """When and on what a run was made: date, vaekit and torch versions, the device (and its name),
    the precision the networks ran in (``precision`` resolved for ``device``) and the CPU threads
    that the thread setting ``threads`` gives (``vaekit.runtime.num_threads``)."""
    from vaekit import __version__
    from vaekit.runtime import autocast_dtype, num_threads

    device = torch.device(device)
    with num_threads(threads):
        used = torch.get_num_threads()
    return {"date": datetime.now().astimezone().isoformat(timespec="seconds"), "vaekit_version": __version__,
            "torch_version": torch.__version__, "device": str(device), "device_name": device_name(device),
            "precision": PRECISIONS.get(autocast_dtype(precision, device), str(precision)),
            "precision_setting": precision, "threads": used}


def training_details(model, history, train: TrainConfig, *, x_val=None, meta=None) -> dict:
    """What the report needs beyond ``train_run``'s numbers: the epoch whose weights were kept
    (``fit`` restores the best epoch only when ``patience`` > 0), the median and worst validation
    ELBO under those weights (one-sample estimates per example, nats in the data's units: the
    preprocessing's log-Jacobian ``meta.log_jacobian_rows`` added) and ``environment``."""
    from vaekit.evaluate import log_likelihood

    out = {"weights_epoch": history.best_epoch if train.patience > 0 else len(history.records)}
    if x_val is not None and len(x_val):
        per = log_likelihood(model, x_val, k=1).double().numpy()  # k = 1: log p(x, z) - log q(z|x), z ~ q
        if meta is not None:
            per = per + meta.log_jacobian_rows(x_val)
        out.update(val_elbo_median=float(np.median(per)), val_elbo_worst=float(per.min()))
    device = next(model.parameters()).device
    env = environment(device, precision=train.precision, threads=train.threads)
    if getattr(history, "precision", ""):  # what fit actually used (precision="auto" resolved by the model's size)
        env.update(precision=history.precision, threads=history.threads)
    return {**out, **env}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "CPU")
    except OSError:
        import platform

        return platform.processor() or "CPU"


def environment_rows(env: dict) -> list[tuple[str, object]]:
    precision = env.get("precision")
    if precision and env.get("precision_setting"):
        precision = f"{precision} for training (setting: {env['precision_setting']}); reported numbers in fp32"
    device = env.get("device")
    if device and env.get("device_name"):
        device = f"{device} ({env['device_name']})"
    return [("Date", env.get("date")), ("vaekit version", env.get("vaekit_version")),
            ("torch version", env.get("torch_version")), ("Device", device), ("Precision", precision),
            ("CPU threads", env.get("threads"))]


# -- the run report -----------------------------------------------------------------------------
def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def units(data: dict, model: dict) -> dict[str, str]:
    """Unit texts for a run's numbers, by data kind: images, table rows or other examples."""
    kind, noun = data.get("kind"), NOUNS.get(data.get("kind"), "example")
    if kind == "image":
        density = "nats per image (pixel values scaled to [0, 1])"
    elif kind == "table":
        density = "nats per row, in the table's original units"
    else:
        density = "nats per example, in the data's own units"
    numeric = [c for c in (data.get("table") or {}).get("columns", []) if c.get("kind") == "numeric"]
    scaled = any(c.get("std", 1.0) != 1.0 or c.get("mean", 0.0) != 0.0 for c in numeric)
    n_dims = math.prod(model.get("input_shape") or [1])
    if kind == "image":
        sq = f"squared error summed over the {n_dims} pixel values ([0, 1] scale), per image"
    elif kind == "table":
        how = "standardised (1 = one standard deviation of the column)" if scaled else "in original units"
        sq = f"squared error summed over the model's {n_dims} columns (numeric {how}; categories one-hot), per row"
    else:
        sq = f"squared error summed over the {n_dims} values, per example"
    return {"noun": noun, "density": density, "bits": "bits per dimension", "sq": sq}


def bits_guide(value, likelihood: str, table: dict | None) -> str:
    discrete = likelihood in DISCRETE or (likelihood == "table" and not any(
        c.get("kind") == "numeric" for c in (table or {}).get("columns", [])))
    if discrete:
        return "Lower is better; never negative for discrete data (a probability is at most 1)."
    why = ("Negative here because" if isinstance(value, float) and value < 0 else "Can be negative because")
    return (f"Lower is better. {why} the data are continuous: a density can exceed 1 (values in a small range "
            "modelled with a small scale), so log p(x) > 0. Compare only models of the same data and preprocessing.")


def evaluation_numbers(ev: dict, data: dict, model: dict) -> list[Number]:
    u = units(data, model)
    n = u["noun"]
    k = ev.get("k")
    rows = [
        Number("ELBO (mean)", ev.get("elbo"), u["density"],
               "Higher is better; a lower bound on log p(x)."),
        Number(f"log p(x), importance-weighted (k = {k})", ev.get("log_likelihood"), u["density"],
               "Higher is better; at least the ELBO and tighter as k grows; the number to compare models by."),
        Number("log p(x), median", ev.get("log_likelihood_median"), u["density"],
               f"The typical {n}; far above the mean when a few {n}s are very unlikely under the model."),
        Number("NLL in bits/dim", ev.get("bits_per_dim"), u["bits"],
               bits_guide(ev.get("bits_per_dim"), model.get("likelihood", ""), data.get("table"))),
        Number("E_q[log p(x|z)] (reconstruction term)", ev.get("log_px_z"), u["density"],
               "Higher is better: how well the decoder explains each input from its latent code."),
        Number("KL(q(z|x) || p(z)) (rate)", ev.get("kl"), f"nats per {n}",
               "The information the latents carry about each input; near 0 means the latents are unused "
               "(posterior collapse)."),
        Number("Active latent units", active_text(ev), "latent dimensions",
               "Dimensions whose posterior mean varies across the data (variance > 0.01, Burda et al. 2015); "
               "the others carry nothing. All of them active: the model may want a larger latent space."),
        Number("Reconstruction error", ev.get("reconstruction_mse"), u["sq"],
               "Lower is better; 0 is a perfect reconstruction."),
    ]
    if ev.get("kl_per_dim"):
        values = ", ".join(f"z{i} {v:.3g}" for i, v in enumerate(ev["kl_per_dim"][:32]))
        rows.append(Number("KL per latent dimension", values, f"nats per {n}",
                           "Near 0: an unused dimension; the largest ones carry most of the information."))
    rows.append(Number(f"{n.capitalize()}s evaluated", ev.get("n_examples"),
                       f"{n}s of the {ev.get('split', 'test')} split", "More gives a more precise mean."))
    return [r for r in rows if r.value is not None]


def active_text(ev: dict) -> str | None:
    """'a of L', per layer for hierarchical models ('3 of 8 (layers, top first: 2 of 4, 1 of 4)')."""
    if "active_units" not in ev:
        return None
    text = f"{ev['active_units']} of {ev['latent_dim']}" if "latent_dim" in ev else str(ev["active_units"])
    if ev.get("active_units_per_layer") and ev.get("layer_sizes"):
        parts = ", ".join(f"{a} of {s}" for a, s in zip(ev["active_units_per_layer"], ev["layer_sizes"]))
        text += f" (layers, top first: {parts})"
    return text


def at(records: list[dict], epoch) -> dict:
    return next((r for r in records if r.get("epoch") == epoch), {})


def split_table(records: list[dict], training: dict, ev: dict, shift: float, density: str) -> str:
    """Train and validation at the last and the best epoch (metrics.jsonl) beside the test numbers
    (evaluation.json), in nats in the units of ``density``."""
    last = records[-1] if records else {}
    best_epoch = training.get("best_epoch")
    kept = training.get("weights_epoch")
    epochs = [(last.get("epoch"), "last")] if records else []
    if records and best_epoch not in (None, -1, last.get("epoch")):
        epochs.append((best_epoch, "best"))
    cols, values = [], []

    for epoch, which in epochs:
        r, final = at(records, epoch), epoch == kept
        tag = f"epoch {epoch}, {which}" + (" = best" if which == "last" and epoch == best_epoch else "")
        cols += [f"train ({tag})", f"validation ({tag}{', saved weights' if final else ''})"]
        values += [{"elbo": plus(r.get("train_elbo"), shift), "kl": r.get("train_kl")},
                   {"elbo": plus(r.get("val_elbo"), shift), "kl": r.get("val_kl"),
                    "log_px_z": plus(r.get("val_log_px_z"), shift),
                    "elbo_median": plus(r.get("val_elbo_median"), shift) if "val_elbo_median" in r else
                    training.get("val_elbo_median") if final else None,
                    "elbo_worst": training.get("val_elbo_worst") if final else None}]
    cols.append(f"{ev.get('split', 'test')} (saved weights)")
    values.append({key: ev.get(key) for key in ("elbo", "kl", "log_px_z", "log_likelihood", "log_likelihood_median")})
    rows = (("elbo", "ELBO, mean (higher is better)"), ("elbo_median", "ELBO, median"),
            ("elbo_worst", "ELBO, worst example"), ("log_px_z", "E_q[log p(x|z)], mean"), ("kl", "KL, mean"),
            ("log_likelihood", "log p(x), mean"), ("log_likelihood_median", "log p(x), median"))
    keep = [i for i, v in enumerate(values) if any(x is not None and x == x for x in v.values())]
    cols, values = [cols[i] for i in keep], [values[i] for i in keep]
    head = f"<tr><th>{html.escape(density)}</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"
    body = "".join(f"<tr><th>{html.escape(label)}</th>" + "".join(
        f"<td class='v'>{'—' if v.get(key) is None or v.get(key) != v.get(key) else esc(v[key])}</td>" for v in values)
        + "</tr>" for key, label in rows if any(v.get(key) is not None for v in values))
    return f"<table>{head}{body}</table>"


def plus(v, shift):
    return None if v is None else v + shift


def warnings(records: list[dict], training: dict, ev: dict, n: str, shift: float = 0.0) -> list[str]:
    """Plain-language notes on what the numbers say: a mean far below its median, kept weights that
    are not the best ones."""
    out = []
    best, kept, last = training.get("best_epoch"), training.get("weights_epoch"), len(records)
    val_mean = plus(at(records, kept).get("val_elbo"), shift)  # the mean under the saved weights
    for what, mean, median in (("test log p(x)", ev.get("log_likelihood"), ev.get("log_likelihood_median")),
                               ("validation ELBO", val_mean, training.get("val_elbo_median"))):
        if mean is not None and median is not None and median - mean > max(5.0, 0.2 * abs(median)):
            out.append(f"The {what} mean ({fmt(mean)}) is {fmt(median - mean)} nats below its median "
                       f"({fmt(median)}): a few {n}s the model finds very unlikely dominate the mean (a learned, "
                       f"unbounded decoder scale can make one {n} cost thousands of nats). Judge the learning "
                       "curves by the median too.")
    if best not in (None, -1) and kept is not None and best != kept:
        out.append(f"The validation ELBO was best at epoch {best}, but the saved weights are from epoch {kept} "
                   f"of {last}; set train.patience to stop early and keep the best weights.")
    return out


PICTURES = {
    "image": (("samples.png", "Samples from the prior", "64 images decoded from z drawn from the prior p(z) "
               "(the decoder's mean, not a noisy draw). Good: they look like the training images; blurred or "
               "identical samples mean a weak or collapsed model.", True),
              ("reconstructions.png", "Test images and their reconstructions", "Rows alternate: test images "
               "(rows 1, 3, ...) and below each the decoder's mean at its posterior mean. Good: each pair matches.",
               True),
              ("traversals.png", "Latent traversals", "One row per latent dimension, most informative (largest "
               "KL) first: that dimension from -3 to +3, the others at 0. A row that does not change is an "
               "unused dimension.", True)),
}


def feature_pictures(row: str, col: str, where: str) -> tuple:
    """Headings and captions of the per-feature charts: a table (rows, columns, original units) or
    other flat data (examples, features)."""
    return (("samples.png", f"Sampled vs real {row}s, per {col}", f"For each {col}: histograms of the test "
             f"{row}s (real) and of {row}s sampled from the model (z from p(z), then x from p(x|z)){where}; "
             "categories as frequency bars. Good: the two overlap.", False),
            ("reconstructions.png", f"Original vs reconstructed values, per {col}", f"Each point is a test {row}: "
             f"its original value (x axis) and its reconstruction (y axis, the decoder's mean at the posterior "
             f"mean){where}; categories as frequency bars. Good: points on the diagonal.", False))


PICTURES["table"] = feature_pictures("row", "column", ", in original units")
PICTURES["array"] = feature_pictures("example", "feature", "")


def write_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` from the files already in the run directory."""
    from vaekit.data import tabular

    run_dir = Path(run_dir)
    ev = read_json(run_dir / "evaluation.json")
    meta = read_json(run_dir / "config.json")
    records = read_records(run_dir / "metrics.jsonl")
    extra, model = meta.get("extra", {}), meta.get("model", {})
    data, training = extra.get("data", {}), extra.get("training", {})
    kind = data.get("kind") if data.get("kind") in PICTURES else "array"
    u = units(data, model)
    noun = u["noun"]
    shift = tabular.log_jacobian(data.get("table"))
    config = (run_dir / "config.toml").read_text() if (run_dir / "config.toml").exists() else ""
    width = f", {model.get('hidden')} hidden units" if model.get("network") == "mlp" else ""
    family = FAMILIES.get(model.get("family", "vae"), str(model.get("family")))
    latent = ev.get("latent_dim", model.get("latent_dim"))
    if ev.get("layer_sizes"):
        latent = f"{latent} ({' + '.join(map(str, ev['layer_sizes']))} in layers, top first)"
    parts = [f"<p>A {html.escape(family)} model of <b>{esc(data.get('name', '?'))}</b> "
             f"({esc(data.get('kind', '?'))} data, each {noun} of shape {esc(model.get('input_shape'))}): "
             f"{esc(model.get('likelihood'))} likelihood, {esc(model.get('network'))} network{esc(width)}, "
             f"{esc(latent)} latent dimensions, {esc(model.get('prior'))} prior.</p>",
             "<h2>Run</h2>", facts_table([
                 *environment_rows(training), ("Training time", f"{fmt(training.get('seconds'))} s"),
                 ("Epochs run", fmt(training.get("epochs")) + " (stopped early)" * bool(training.get("stopped_early"))),
                 ("Best epoch (highest validation ELBO)", training.get("best_epoch")),
                 ("Saved weights from epoch", training.get("weights_epoch")),
                 (f"Training / validation / test {noun}s",
                  " / ".join(fmt(training.get(s)) for s in ("n_train", "n_val", "n_test")))])]
    if ev:
        parts += [f"<h2>Evaluation on the {esc(ev.get('split', 'test'))} split</h2>",
                  f"<p>Per {noun}, averaged over {esc(ev.get('n_examples'))} {noun}s; densities in "
                  f"{esc(u['density'])}. Every number is computed in float32 with the saved weights.</p>",
                  numbers_table(evaluation_numbers(ev, data, model))]
    if records or ev:
        parts += ["<h2>Train, validation and test side by side</h2>",
                  "<p>Train numbers are averages over each epoch's mini-batches while the weights were changing; "
                  "validation numbers are computed after the epoch with fixed weights (median and worst example: "
                  "one-sample ELBO per example with the saved weights); test numbers come from evaluation.json. "
                  "Validation far below train suggests overfitting, but compare the medians first.</p>",
                  split_table(records, training, ev, shift, u["density"])]
        parts += [note(w) for w in warnings(records, training, ev, noun, shift)]
    for name, heading, caption, pixelated in PICTURES[kind]:
        parts.append(figure(run_dir / name, heading, caption, pixelated=pixelated))
    parts.append(figure(run_dir / "latent.png", f"Latent means of the test {noun}s",
                        f"The posterior mean of each test {noun}, in 2-D (the first two principal components when "
                        f"there are more than two latent dimensions), coloured by label when the data have labels. "
                        f"Good: similar {noun}s lie close together."))
    parts.append(figure(run_dir / "curves.png", "Learning curves",
                        f"Mean ELBO per epoch ({u['density']}, higher is better) and KL, for the training and "
                        f"validation {noun}s; the dotted line marks the best epoch. A validation curve that falls "
                        "while the training curve rises means overfitting; a mean can also fall because of a "
                        f"single badly modelled {noun}, which the median (when recorded) shows."))
    parts.append(f"<h2>Resolved config (config.toml)</h2><pre>{html.escape(config)}</pre>")
    return write_page(run_dir / "report.html", f"vaekit run: {run_dir.name}", parts)
