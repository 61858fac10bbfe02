"""The quality report as one self-contained HTML page: the measures, per-column real-vs-synthetic plots
(histograms for numbers and dates, bars for categories and booleans), the column-pair scores as a heat
map, and the per-column and per-pair tables. Pictures are PNGs embedded in the page."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from vaekit.atomic import atomic_write

REAL, SYNTH = "#4c72b0", "#dd8452"
STYLE = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}
.score{font-size:2.2em;font-weight:600;margin:0}.muted{color:#666}"""


def png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def column_plot(ax, name: str, real: pd.Series, synth: pd.Series, sdtype: str, score: float | None) -> None:
    if sdtype in ("numerical", "datetime"):
        r, s = (pd.to_datetime(real).astype("int64") / 86400e9, pd.to_datetime(synth).astype("int64") / 86400e9) \
            if sdtype == "datetime" else (pd.to_numeric(real, errors="coerce"), pd.to_numeric(synth, errors="coerce"))
        r, s = r.dropna().to_numpy(float), s.dropna().to_numpy(float)
        lo, hi = (np.quantile(r, [0.0, 0.995]) if len(r) else (0.0, 1.0))
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 31)
        for values, colour, label in ((r, REAL, "real"), (s, SYNTH, "synthetic")):
            if len(values):  # an all-missing column has no histogram (density of nothing is 0 / 0)
                ax.hist(np.clip(values, lo, hi), bins=bins, density=True, alpha=0.55, color=colour, label=label)
        if not (len(r) or len(s)):
            ax.text(0.5, 0.5, "every cell missing", ha="center", va="center", transform=ax.transAxes)
        if sdtype == "datetime":
            ax.set_xlabel("days since 1970")
    else:
        fr = real.astype(str).where(real.notna(), "<missing>").value_counts(normalize=True)
        fs = synth.astype(str).where(synth.notna(), "<missing>").value_counts(normalize=True)
        cats = list(fr.index[:12])
        x = np.arange(len(cats))
        ax.bar(x - 0.2, [fr.get(c, 0) for c in cats], 0.4, color=REAL, label="real")
        ax.bar(x + 0.2, [fs.get(c, 0) for c in cats], 0.4, color=SYNTH, label="synthetic")
        ax.set_xticks(x, [c[:14] for c in cats], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("share of rows", fontsize=8)
    ax.set_title(f"{name}" + (f"  (score {score:.2f})" if score is not None and not math.isnan(score) else ""),
                 fontsize=9)
    ax.tick_params(labelsize=7)


def columns_figure(report) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report.metadata["columns"])
    scores = dict(zip(report.column_shapes["Column"], report.column_shapes["Score"]))
    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        column_plot(ax, name, report.real[name], report.synthetic[name],
                    report.metadata["columns"][name]["sdtype"], scores.get(name))
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return png(fig)


def pairs_figure(report) -> str | None:
    import matplotlib.pyplot as plt

    pairs = report.column_pairs
    if pairs is None or not len(pairs):
        return None
    names = list(report.metadata["columns"])
    m = pd.DataFrame(np.nan, index=names, columns=names)
    for _, p in pairs.iterrows():
        m.loc[p["Column 1"], p["Column 2"]] = m.loc[p["Column 2"], p["Column 1"]] = p["Score"]
    fig, ax = plt.subplots(figsize=(0.45 * len(names) + 2, 0.45 * len(names) + 1))
    im = ax.imshow(m.to_numpy(float), vmin=0, vmax=1, cmap="RdYlGn")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    fig.colorbar(im, ax=ax, label="pair similarity (1 = same trend)")
    fig.tight_layout()
    return png(fig)


def table_html(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for _, row in frame.iterrows():
        cells = []
        for v in row:
            if isinstance(v, (float, np.floating)):
                cells.append(f'<td class="num">{v:.4g}</td>')
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def write_html(report, path: Path, *, title: str) -> Path:
    pairs_png = pairs_figure(report)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='score'>Quality score {report.score:.3f}</p>",
             f"<p class='muted'>{len(report.real)} real rows, {len(report.synthetic)} synthetic rows; "
             "scores in [0, 1], higher is better, except where a note says otherwise.</p>",
             "<h2>Measures</h2>", table_html(report.summary),
             "<h2>Columns: real against synthetic</h2>",
             f"<img alt='per-column distributions' src='data:image/png;base64,{columns_figure(report)}'>"]
    if pairs_png:
        parts += ["<h2>Column pairs</h2>",
                  f"<img alt='column pair trends' src='data:image/png;base64,{pairs_png}'>"]
    parts += ["<h2>Column shapes</h2>", table_html(report.column_shapes)]
    if report.column_pairs is not None and len(report.column_pairs):
        parts += ["<h2>Column pair trends</h2>", table_html(report.column_pairs)]
    parts.append("</body></html>")
    text = "\n".join(parts)
    atomic_write(path, lambda p: Path(p).write_text(text, encoding="utf-8"))
    return path
