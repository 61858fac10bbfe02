"""``report.html``: one self-contained page (images embedded as base64) with a run's key numbers,
config and pictures; readable offline."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from vaekit.io import atomic_write

PICTURES = (("samples.png", "Samples from the prior (decoded means)"),
            ("reconstructions.png", "Test examples (upper rows) and their reconstructions (lower rows)"),
            ("traversals.png", ("Latent traversals: one row per latent dimension (most used first), "
                                "from -3 to +3 with the others at 0")),
            ("latent.png", "Latent means of the test set"),
            ("curves.png", "Training curves"))

NUMBERS = (("elbo", "ELBO (nats, higher is better)"), ("log_likelihood", "log p(x), importance weighted (nats)"),
           ("bits_per_dim", "NLL (bits/dim)"), ("kl", "KL(q(z|x) || p(z)) (nats)"),
           ("log_px_z", "E_q[log p(x|z)] (nats)"), ("active_units", "Active latent units"),
           ("reconstruction_mse", "Reconstruction squared error (model units)"),
           ("k", "Importance samples k"), ("n_examples", "Examples evaluated"))

STYLE = ("body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
         "table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}"
         "img{max-width:100%;image-rendering:pixelated;border:1px solid #ccc}pre{background:#f6f6f6;padding:1em}")


def fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def table(rows: list[tuple[str, object]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in rows) + "</table>"


def write_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` from the files already in the run directory."""
    run_dir = Path(run_dir)
    evaluation = json.loads((run_dir / "evaluation.json").read_text()) if (run_dir / "evaluation.json").exists() else {}
    meta = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").exists() else {}
    extra, model = meta.get("extra", {}), meta.get("model", {})
    data, training = extra.get("data", {}), extra.get("training", {})
    config = (run_dir / "config.toml").read_text() if (run_dir / "config.toml").exists() else ""
    parts = [f"<!doctype html><meta charset='utf-8'><title>vaekit run {html.escape(run_dir.name)}</title>",
             f"<style>{STYLE}</style><h1>vaekit run: {html.escape(run_dir.name)}</h1>",
             (f"<p>Data <b>{html.escape(str(data.get('name', '?')))}</b> "
              f"({html.escape(str(data.get('kind', '?')))}, example shape {model.get('input_shape')}), "
              f"{model.get('likelihood')} likelihood, {model.get('network')} network, "
              f"latent_dim {model.get('latent_dim')}, {training.get('epochs', '?')} epochs in "
              f"{training.get('seconds', '?')} s.</p>")]
    if evaluation:
        split = evaluation.get("split", "test")
        parts.append(f"<h2>Evaluation on the {html.escape(split)} split</h2>")
        parts.append(f"<p>Units: {html.escape(evaluation.get('units', 'nats per example'))}.</p>")
        parts.append(table([(label, evaluation[key]) for key, label in NUMBERS if key in evaluation]))
    for name, caption in PICTURES:
        path = run_dir / name
        if path.exists():
            b64 = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append(f"<h2>{html.escape(caption)}</h2><img alt='{name}' src='data:image/png;base64,{b64}'>")
    parts.append(f"<h2>Resolved config (config.toml)</h2><pre>{html.escape(config)}</pre>")
    out = run_dir / "report.html"
    return atomic_write(out, lambda p: p.write_text("\n".join(parts), encoding="utf-8"))
