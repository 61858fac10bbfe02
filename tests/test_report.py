"""report.html explains itself: each variant (image run, table run, table detector, time-series
detector) is made from a small run here and its numbers, units and headings are checked against the
files the run wrote."""

from __future__ import annotations

import base64
import html
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import vaekit
from vaekit.report import environment, fmt, split_table, warnings, write_report


def text_of(page: str) -> str:
    """The visible prose of a report: no style sheet, pictures, config listing or tags."""
    page = re.sub(r"<pre>.*?</pre>|<style>.*?</style>", "", page, flags=re.S)
    page = re.sub(r"src='data:image/png;base64,[^']*'", "", page)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def embedded_pngs(page: str) -> list[tuple[int, int]]:
    sizes = []
    for b64 in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page):
        with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
            assert im.format == "PNG"
            sizes.append(im.size)
    return sizes


def train(tmp, data, sets):
    from vaekit.run import resolve_config, train_run

    cfg = resolve_config(data=str(data), sets=["progress=false", "epochs=1", "hidden=[16]", *sets])
    train_run(cfg, tmp, eval_k=3)
    return tmp


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("digits") / "run", "digits", ["max_examples=400"])


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    n = 200
    pd.DataFrame({"age": rng.normal(40, 10, n).round(1), "income": rng.lognormal(10, 0.5, n),
                  "city": rng.choice(["north", "south", "east"], n)}).to_csv(root / "people.csv", index=False)
    return train(root / "run", root / "people.csv", ["latent_dim=3"])


def read(run):
    training = json.loads((run / "config.json").read_text())["extra"]["training"]
    ev = json.loads((run / "evaluation.json").read_text())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return (run / "report.html").read_text(), training, ev, records


def test_image_report_numbers_units_and_headings(image_run):
    page, training, ev, records = read(image_run)
    text = text_of(page)
    for heading in ("Samples from the prior", "Test images and their reconstructions", "Latent traversals",
                    "Latent means of the test images", "Learning curves", "Train, validation and test side by side"):
        assert f"<h2>{heading}</h2>" in page
    assert f"{ev['active_units']} of 8" in text and ev["latent_dim"] == 8
    assert "nats per image (pixel values scaled to [0, 1])" in text
    assert fmt(ev["bits_per_dim"]) in text and "bits per dimension" in text and "Lower is better" in text
    if ev["bits_per_dim"] < 0:  # a Gaussian on [0, 1] pixels: density above 1
        assert "Negative here because the data are continuous" in text
    for key in ("elbo", "log_likelihood", "log_likelihood_median", "kl", "log_px_z"):
        assert fmt(ev[key]) in text, key
    # train and validation from metrics.jsonl, test from evaluation.json, side by side
    last = records[-1]
    table = page[page.index("side by side"):page.index("Samples from the prior")]
    assert fmt(last["train_elbo"]) in table and fmt(last["val_elbo"]) in table and fmt(ev["elbo"]) in table
    assert fmt(training["val_elbo_median"]) in table and fmt(training["val_elbo_worst"]) in table
    assert training["val_elbo_worst"] <= training["val_elbo_median"]
    # when, with what and on what
    assert training["date"] in text and training["weights_epoch"] == 1
    assert f"vaekit version {vaekit.__version__}" in " ".join(text.split())
    assert torch.__version__ in text and "cpu (" in text
    assert training["threads"] == torch.get_num_threads() == 1 and training["precision"] in ("fp32", "bf16")
    # five pictures; the sample grid keeps 64-pixel cells (8 columns of 8x8 digits enlarged 8 times)
    sizes = embedded_pngs(page)
    assert len(sizes) == 5 and (8 * 66 + 2, 8 * 66 + 2) in sizes


def test_table_report_speaks_of_rows_and_columns(table_run):
    page, _, ev, records = read(table_run)
    text = text_of(page)
    assert "<h2>Sampled vs real rows, per column</h2>" in page
    assert "<h2>Original vs reconstructed values, per column</h2>" in page
    assert "<h2>Latent means of the test rows</h2>" in page
    assert not re.search(r"image|pixel|traversal", text, re.I)
    assert "nats per row, in the table's original units" in text
    assert "numeric standardised (1 = one standard deviation of the column)" in text  # the MSE's unit
    assert f"{ev['active_units']} of 3" in text
    assert f"{ev['n_examples']} rows of the test split" in " ".join(text.split())
    assert fmt(ev["log_likelihood"]) in text and fmt(records[-1]["val_elbo"] + ev["log_jacobian"]) in text
    assert len(embedded_pngs(page)) == 4


def test_split_table_shows_best_and_last_epochs_and_warns():
    records = [{"epoch": 1, "train_elbo": -90.0, "train_kl": 5.0, "val_elbo": -85.0, "val_kl": 5.5},
               {"epoch": 2, "train_elbo": -80.0, "train_kl": 6.0, "val_elbo": -88.0, "val_kl": 6.5}]
    training = {"best_epoch": 1, "weights_epoch": 2, "val_elbo": -88.0, "val_elbo_median": -60.0,
                "val_elbo_worst": -4153.0}
    ev = {"elbo": -87.0, "log_likelihood": -84.0, "log_likelihood_median": -83.5, "split": "test"}
    table = split_table(records, training, ev, 0.0, "nats per image")
    heads = re.findall(r"<th>([^<]*)</th>", table)
    assert heads[:6] == ["nats per image", "train (epoch 2, last)", "validation (epoch 2, last, saved weights)",
                         "train (epoch 1, best)", "validation (epoch 1, best)", "test (saved weights)"]
    assert "-4,153.00" in table and "-85" in table and "-80" in table
    notes = warnings(records, training, ev, "image")
    assert any("28 nats below its median" in w for w in notes)  # -88 vs -60
    assert any("best at epoch 1" in w and "epoch 2" in w for w in notes)
    assert len(notes) == 2  # the test mean sits near its median: no note about it


def test_environment_reports_the_settings_it_resolves():
    env = environment("cpu", precision="fp32", threads=2)
    assert env["threads"] == 2 and env["precision"] == "fp32" and env["device"] == "cpu"
    assert env["torch_version"] == torch.__version__ and env["vaekit_version"] == vaekit.__version__
    assert torch.get_num_threads() == 1  # the caller's setting is restored
    assert environment("cpu", precision="bf16")["precision"] == "bf16"


def test_report_of_an_old_run_directory_says_what_was_not_recorded(tmp_path):
    (tmp_path / "evaluation.json").write_text(json.dumps({"elbo": -12.5, "active_units": 2, "latent_dim": 8}))
    text = text_of(write_report(tmp_path).read_text())
    assert "-12.5" in text and "2 of 8" in text and "not recorded" in text


# -- detectors -------------------------------------------------------------------------------------
def test_table_detector_report(tmp_path):
    from vaekit.cli import main
    from vaekit.loading import load

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(5, 2, 200), "c": rng.choice(["x", "y"], 200)})
    frame.loc[7, "a"] = 15.0  # one planted outlier
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert main(["detect", "fit", str(tmp_path / "t.csv"), "--out", str(tmp_path / "d"), "--epochs", "2",
                 "--latent-dim", "2", "--set", "hidden=[8]", "--set", "k=10"]) == 0
    det = load(tmp_path / "d")
    page = (tmp_path / "d" / "report.html").read_text()
    text = " ".join(text_of(page).split())
    flagged = int((det.decision_scores_ > det.threshold_).sum())
    assert f"Threshold {fmt(det.threshold_)} nats per row, in the data's original units" in text
    assert f"Flagged training rows {flagged} of 200" in text
    assert "<h2>Scores of the training rows</h2>" in page and "<h2>Training curve</h2>" in page
    top = page[page.index("Most anomalous training rows"):]
    assert re.search(r"<td class='v'>7</td>", top[:top.index("</tr>", top.index("<td")) + 5])  # first row: 7
    assert not re.search(r"image|pixel", text, re.I) and "Known anomalies" not in text
    assert len(embedded_pngs(page)) == 2


def test_series_detector_report_with_labels(tmp_path):
    from vaekit.cli import main

    rng = np.random.default_rng(1)
    T = 240
    t = np.arange(T)
    v = np.sin(t / 6) + 0.05 * rng.normal(size=T)
    labels = np.zeros(T, int)
    v[150:154] += 5.0
    labels[150:154] = 1
    pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=T, freq="min"), "cpu": v,
                  "is_anomaly": labels}).to_csv(tmp_path / "s.csv", index=False)
    assert main(["detect", "fit", str(tmp_path / "s.csv"), "--out", str(tmp_path / "d"), "--window", "8",
                 "--labels", "is_anomaly", "--epochs", "2", "--latent-dim", "2", "--contamination", "0.05",
                 "--set", "hidden=[8]", "--set", "k=10"]) == 0
    page = (tmp_path / "d" / "report.html").read_text()
    text = " ".join(text_of(page).split())
    for heading in ("Scores of the training timestamps", "The series with flagged points", "Training curve",
                    "Known anomalies (labels)"):
        assert f"<h2>{heading}</h2>" in page
    assert "Labelled anomalous windows 1 (4 timestamps)" in text
    assert "nats per timestamp, in the data's original units" in text and "ROC AUC" in text
    assert "nats per window of 8 time steps" in text
    assert len(embedded_pngs(page)) == 3
