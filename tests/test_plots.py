"""Pictures: exact grid sizes, valid PNGs, charts for tables and curves, the HTML report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vaekit.data import DataMeta
from vaekit.plots import (
    as_images,
    curves,
    feature_plots,
    grid_size,
    image_grid,
    latent_map,
    pairs_grid,
    save_grid,
)
from vaekit.report import write_report


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


# (shape, n, ncol, (width, height)) worked out by hand: cells are enlarged by the smallest integer factor
# that makes them at least 64 px, with 2 px of padding around every cell.
@pytest.mark.parametrize("shape, n, ncol, size", [
    ((1, 8, 8), 64, 8, (8 * (64 + 2) + 2, 8 * (64 + 2) + 2)),  # factor 8
    ((3, 5, 7), 10, 4, (4 * (7 * 10 + 2) + 2, 3 * (5 * 10 + 2) + 2)),  # factor 10 (7 * 10 >= 64)
    ((1, 40, 40), 3, 8, (8 * (80 + 2) + 2, 1 * (80 + 2) + 2)),  # factor 2
])
def test_grid_has_the_expected_size_and_places_images(tmp_path, shape, n, ncol, size):
    images = np.random.default_rng(0).random((n, *shape)).astype(np.float32)
    grid = image_grid(images, ncol)
    width, height = size
    assert grid_size(n, ncol, shape) == size
    assert grid.shape[:2] == (height, width) and grid.dtype == np.uint8
    assert png_size(save_grid(images, tmp_path / "g.png", ncol=ncol)) == (width, height)


def test_grid_pixels_match_the_first_image():
    images = np.zeros((2, 1, 8, 8), np.float32)
    images[0, 0, 0, 0] = 1.0
    grid = image_grid(images, 2)
    f = 8  # 8-pixel images are enlarged 8x to 64 pixels
    assert (grid[2 : 2 + f, 2 : 2 + f] == 255).all() and grid[2 + f, 2 + f] == 0


def test_pairs_grid_puts_originals_above_reconstructions():
    a, b = np.zeros((3, 1, 4, 4)), np.ones((3, 1, 4, 4))
    rows = pairs_grid(a, b, ncol=2)
    assert rows.shape == (8, 1, 4, 4)
    assert rows[:2].max() == 0 and rows[2:4].min() == 1 and rows[4].max() == 0 and rows[6].min() == 1


def test_as_images_only_for_pictures():
    flat = DataMeta("m", "array", (16,), image_shape=(1, 4, 4))
    assert as_images(np.full((2, 16), 2.0), flat).shape == (2, 1, 4, 4)
    assert as_images(np.zeros((2, 16)), DataMeta("t", "table", (16,))) is None


def test_charts_are_pngs(tmp_path):
    records = [{"epoch": e, "train_elbo": -e, "val_elbo": -e - 1, "train_kl": 1.0, "val_kl": 1.2} for e in range(1, 4)]
    assert png_size(curves(records, tmp_path / "c.png")) == (900, 350)
    z, y = np.random.default_rng(0).normal(size=(50, 5)), np.arange(50) % 3
    assert png_size(latent_map(z, tmp_path / "l.png", y=y, class_names=["a", "b", "c"])) == (550, 500)
    assert png_size(latent_map(z[:, :2], tmp_path / "l2.png")) == (550, 500)
    real = pd.DataFrame({"x": np.arange(20.0), "c": ["u", "v"] * 10})
    fake = pd.DataFrame({"x": np.arange(20.0) + 1, "c": ["u"] * 20})
    for kind in ("samples", "reconstructions"):
        assert png_size(feature_plots(real, fake, tmp_path / f"{kind}.png", kind=kind)) == (600, 260)


def test_curves_draw_the_validation_median_when_recorded(tmp_path):
    records = [{"epoch": e, "train_elbo": -e, "val_elbo": -e - 1, "train_kl": 1.0, "val_kl": 1.2} for e in range(1, 4)]
    plain = curves(records, tmp_path / "plain.png")
    with_median = curves([{**r, "val_elbo_median": r["val_elbo"] + 0.5} for r in records], tmp_path / "median.png")
    assert png_size(with_median) == png_size(plain)
    assert plain.read_bytes() != with_median.read_bytes()


def test_report_embeds_pictures_and_numbers(tmp_path):
    save_grid(np.zeros((4, 1, 8, 8)), tmp_path / "samples.png")
    (tmp_path / "evaluation.json").write_text(json.dumps({"elbo": -12.5, "split": "test", "units": "nats"}))
    (tmp_path / "config.toml").write_text("[train]\nepochs = 1\n")
    html = write_report(tmp_path).read_text()
    assert "data:image/png;base64," in html and "-12.5" in html and "epochs = 1" in html
    assert "reconstructions.png" not in html  # pictures that do not exist are left out
