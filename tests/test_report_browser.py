"""report.html in a real headless browser (Playwright driving Debian's Chromium): every picture
decodes, the key numbers are on screen, and the page loads nothing from elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vaekit.report import fmt

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="needs Chromium at /usr/bin/chromium (Debian's chromium package)")
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """An image run and a time-series detector, each with its report.html."""
    from vaekit.cli import main
    from vaekit.run import resolve_config, train_run

    root = tmp_path_factory.mktemp("browser")
    cfg = resolve_config(data="digits", sets=["progress=false", "epochs=1", "hidden=[16]", "max_examples=400"])
    train_run(cfg, root / "run", eval_k=3)
    T = 200
    v = np.sin(np.arange(T) / 6)
    labels = np.zeros(T, int)
    v[120:124] += 4.0
    labels[120:124] = 1
    pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=T, freq="min"), "cpu": v,
                  "is_anomaly": labels}).to_csv(root / "s.csv", index=False)
    assert main(["detect", "fit", str(root / "s.csv"), "--out", str(root / "det"), "--window", "8", "--labels",
                 "is_anomaly", "--epochs", "2", "--latent-dim", "2", "--set", "hidden=[8]", "--set", "k=10"]) == 0
    return root


def open_page(browser, path: Path, requests: list[str]):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


def decoded_images(page) -> list[int]:
    return page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")


def test_reports_render_in_chromium(reports, tmp_path):
    run, det = reports / "run", reports / "det"
    ev = json.loads((run / "evaluation.json").read_text())
    training = json.loads((run / "config.json").read_text())["extra"]["training"]
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = open_page(browser, run / "report.html", requests)
            widths = decoded_images(page)
            assert len(widths) == 5 and all(w > 0 for w in widths), widths
            assert 530 in widths  # the sample grid at its own size: 64-pixel cells
            for number in (f"{ev['active_units']} of {ev['latent_dim']}", fmt(ev["bits_per_dim"]),
                           fmt(ev["log_likelihood"]), training["date"], "bits per dimension"):
                assert page.get_by_text(number, exact=False).first.is_visible(), number
            page.screenshot(path=str(tmp_path / "run.png"), full_page=True)

            page = open_page(browser, det / "report.html", requests)
            widths = decoded_images(page)
            assert len(widths) == 3 and all(w > 0 for w in widths), widths
            assert page.get_by_text("Labelled anomalous windows").first.is_visible()
            assert page.get_by_role("heading", name="The series with flagged points").is_visible()
            page.screenshot(path=str(tmp_path / "detector.png"), full_page=True)
        finally:
            browser.close()
    assert all(u.startswith(("file://", "data:")) for u in requests), requests  # nothing from elsewhere
    assert (tmp_path / "run.png").stat().st_size > 10_000
