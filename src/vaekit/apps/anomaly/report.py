"""The detector's ``report.html`` (written by ``vaekit detect fit`` into the detector's directory):
what was fitted, the score and its threshold with units, the training curve, the histogram of the
training scores and, for a time series, the series with its flagged points and labelled windows,
with detection metrics when labels were given. Self-contained: pictures embedded, readable offline.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from vaekit.apps.anomaly.metrics import detection_metrics, segments
from vaekit.apps.anomaly.plot import plot_series, plot_table
from vaekit.data import tabular
from vaekit.plots import curves
from vaekit.report import (
    Number,
    environment,
    environment_rows,
    esc,
    facts_table,
    figure,
    fmt,
    numbers_table,
    write_page,
)

SCORES = {"nll": ("-log p(x)", "the negative importance-weighted log-likelihood"),
          "elbo": ("-ELBO", "the negative evidence lower bound"),
          "recon_prob": ("-log reconstruction probability", "the negative log of the reconstruction "
                         "probability (An & Cho 2015)"),
          "recon_error": ("squared reconstruction error",
                          "the squared distance between the input and its reconstruction")}


def score_unit(det, noun: str) -> str:
    if det.scoring == "recon_error":
        return f"squared error per {noun}, in standard deviations of each column"
    return f"nats per {noun}, in the data's original units"


def write_detector_report(det, out: str | Path, *, data: str = "", frame: pd.DataFrame | None = None,
                          labels=None, seconds: float | None = None) -> Path:
    """Write ``out/report.html`` (and its pictures) for a fitted ``AnomalyDetector`` or
    ``TimeSeriesDetector``. ``frame``: the training data as given to ``fit`` (needed to draw a
    series and to explain the top rows of a table); ``labels``: the 0/1 labels given to a series."""
    out = Path(out)
    series = type(det).__name__ == "TimeSeriesDetector"
    noun = "timestamp" if series else "row"
    unit = score_unit(det, noun)
    scores = np.asarray(det.decision_scores_, np.float64)
    history = getattr(det, "history_", None)  # only a freshly fitted detector has its training history
    records = history.records if history is not None else []
    if series:
        shift = -int(det.window) * float(np.log(det.scale_).sum())
        model_unit = f"nats per window of {det.window} time steps, original units"
    else:
        shift = tabular.log_jacobian(det.table_)
        model_unit = "nats per row, original units"
    if records:
        curves(records, out / "curves.png", shift=shift, noun="window" if series else "row")
    plot_table(scores, det.threshold_, out / "scores.png", unit=unit.split(",")[0], noun=noun + "s")
    has_labels = labels is not None and np.asarray(labels).max(initial=0) > 0
    if series and frame is not None:
        from vaekit.apps.anomaly.timeseries import read_series

        values, times = read_series(frame, timestamp=det.timestamp, name=data or "series")
        plot_series(times, values, scores, det.threshold_, out / "series.png", unit=unit.split(",")[0],
                    labels=np.asarray(labels) if has_labels else None)

    name, meaning = SCORES[det.scoring]
    flagged = int((scores > det.threshold_).sum())
    what = (f"a time series of {len(scores):,} timestamps and {len(det.metrics_)} metric(s) "
            f"({', '.join(map(str, det.metrics_[:8]))}), in windows of {det.window} time steps" if series else
            f"a table of {len(scores):,} rows and {len(det.feature_names_)} modelled feature(s)")
    parts = [f"<p>A {type(det).__name__} fitted on {html.escape(what)}"
             + (f" from <b>{html.escape(str(data))}</b>" if data else "") + ". "
             f"Score: {html.escape(name)}, {html.escape(meaning)}"
             + (" of each timestamp's value given its window" if series else "")
             + f"; higher = more anomalous ({html.escape(unit)}).</p>",
             "<h2>Run</h2>", facts_table([
                 *environment_rows(environment(det._device(), precision=det.precision, threads=0)),
                 ("Fit time (training, then scoring the training rows)", seconds and f"{fmt(seconds)} s"),
                 ("Epochs run", len(records) or None), ("Best epoch", getattr(history, "best_epoch", None)),
                 ("Model", f"latent_dim {det.latent_dim}, hidden {tuple(det.hidden)}, "
                           f"contamination {det.contamination}")]),
             "<h2>Scores and threshold</h2>", numbers_table(score_numbers(det, scores, flagged, unit, noun))]
    if records:
        parts += ["<h2>Training</h2>", numbers_table(training_numbers(records, det, shift, model_unit))]
    if has_labels:
        parts += ["<h2>Known anomalies (labels)</h2>",
                  "<p>Measured on the training series, whose labelled points were masked out of training: an "
                  "optimistic check, not a held-out test.</p>",
                  numbers_table(label_numbers(np.asarray(labels), scores, det.threshold_))]
    if not series and frame is not None and len(frame):
        parts += ["<h2>Most anomalous training rows</h2>", top_rows(det, frame, scores, unit)]
    parts.append(figure(out / "scores.png", f"Scores of the training {noun}s",
                        f"Histogram of the training scores ({unit}; log count) and the threshold (dashed): "
                        f"{noun}s to its right are flagged. Good: normal {noun}s form one bulk well left of the "
                        f"threshold, and the flagged ones stand apart."))
    if series:
        parts.append(figure(out / "series.png", "The series with flagged points",
                            "One panel per metric (original units) with the flagged timestamps in red and the "
                            "labelled anomalous windows shaded, and the score with its threshold at the bottom. "
                            "Good: red points fall inside the shaded windows and rarely elsewhere."))
    parts.append(figure(out / "curves.png", "Training curve",
                        f"Mean ELBO ({model_unit}, higher is better) and KL of the training and validation "
                        f"{'windows' if series else 'rows'} per epoch; the dotted line marks the best epoch. Good: "
                        "both rise and level off together."))
    return write_page(out / "report.html", f"vaekit detector: {out.name}", parts)


def score_numbers(det, scores: np.ndarray, flagged: int, unit: str, noun: str) -> list[Number]:
    q = np.quantile(scores, [0.5, 0.9, 0.99])
    c = float(det.contamination)
    return [Number("Threshold", float(det.threshold_), unit,
                   f"The (1 - contamination) = {1 - c:g} quantile of the training scores; a {noun} scoring above it "
                   "is flagged. Set contamination to the expected share of anomalies."),
            Number(f"Flagged training {noun}s", f"{flagged:,} of {len(scores):,}", f"{noun}s",
                   f"About contamination x {noun}s ({c:g} x {len(scores):,}) by construction."),
            Number("Median score", float(q[0]), unit, f"The typical {noun}; normal {noun}s sit near it."),
            Number("90th / 99th percentile", f"{fmt(float(q[1]))} / {fmt(float(q[2]))}", unit,
                   "Well below the maximum when a few anomalies stand out from the bulk."),
            Number("Highest score", float(scores.max()), unit, "The most anomalous training " + noun + ".")]


def training_numbers(records: list[dict], det, shift: float, model_unit: str) -> list[Number]:
    last = records[-1]
    best = next((r for r in records if r["epoch"] == det.history_.best_epoch), last)  # early stopping keeps it
    rows = [Number(f"Training ELBO, last epoch ({last['epoch']})", last["train_elbo"] + shift, model_unit,
                   "Higher is better; averaged over the epoch while the weights changed.")]
    if "val_elbo" in last:
        rows += [Number(f"Validation ELBO, last epoch ({last['epoch']})", last["val_elbo"] + shift, model_unit,
                        "Higher is better; close to the training ELBO when the model generalises."),
                 Number(f"Validation ELBO, best epoch ({best['epoch']}, weights kept)", best["val_elbo"] + shift,
                        model_unit, "The weights the detector uses (early stopping keeps the best epoch).")]
    rows.append(Number("KL, last epoch", last.get("val_kl", last["train_kl"]), model_unit.split(",")[0],
                       "The information the latents carry; near 0 means the latents are unused."))
    return rows


def label_numbers(labels: np.ndarray, scores: np.ndarray, threshold: float) -> list[Number]:
    labels = (labels > 0).astype(int)
    flags = scores > threshold
    hit = int((flags & (labels == 1)).sum())
    windows = segments(labels)
    found = sum(bool(flags[a:b].any()) for a, b in windows)
    rows = [Number("Labelled anomalous windows", f"{len(windows)} ({int(labels.sum())} timestamps)", "windows",
                   "Runs of consecutive timestamps labelled 1."),
            Number("Labelled windows with a flagged point", f"{found} of {len(windows)}", "windows",
                   "All of them: every known incident raises an alarm (point-adjusted recall)."),
            Number("Flagged timestamps inside labelled windows", f"{hit} of {int(flags.sum())}", "timestamps",
                   "Most of them: few false alarms (precision at the threshold).")]
    if labels.min() != labels.max():
        m = detection_metrics(labels, scores)
        rows += [Number("ROC AUC", m["roc_auc"], "0 to 1", "1 is perfect ranking, 0.5 is chance."),
                 Number("PR AUC (average precision)", m["pr_auc"], "0 to 1",
                        f"1 is perfect; chance is the share of labelled timestamps ({labels.mean():.3g})."),
                 Number("Best F1, point-adjusted", m["best_f1_pa"], "0 to 1",
                        "1 is perfect: the best threshold finds every window with no false alarms (Xu et al. 2018).")]
    return rows


def top_rows(det, frame: pd.DataFrame, scores: np.ndarray, unit: str, n: int = 5) -> str:
    """The ``n`` highest-scoring training rows, each with the features that contribute most."""
    idx = np.argsort(-scores)[:n]
    contrib = det.explain(frame.iloc[idx])
    rows = "".join(
        f"<tr><td class='v'>{esc(frame.index[i])}</td><td class='v'>{esc(float(scores[i]))}</td><td>"
        + html.escape(", ".join(f"{c} ({fmt(float(v))})" for c, v in contrib.iloc[j].nlargest(3).items()))
        + "</td></tr>" for j, i in enumerate(idx))
    return (f"<table><tr><th>Row</th><th>Score ({html.escape(unit)})</th><th>Largest contributions "
            f"(feature: its part of the score)</th></tr>{rows}</table>")
