"""Pictures of a run: image grids (Pillow, exact pixel sizes) and charts (matplotlib, Agg backend).

Image data gets grids of samples, reconstructions and traversals; tables (and other flat data) get
histograms of real vs sampled values and scatter plots of original vs reconstructed values per column.
Every function writes a PNG atomically.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vaekit.data import DataMeta
from vaekit.data.outputs import as_frame, to_user
from vaekit.io import atomic_write

PAD = 2  # pixels between grid cells
MIN_CELL = 64  # small images are enlarged by an integer factor to at least this size (8x8 digits: 64 px)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 (H, W) or (H, W, C) array as PNG via a temporary file."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
    return atomic_write(path, lambda p: Image.fromarray(img).save(p, format="PNG"))


def as_images(x: np.ndarray | torch.Tensor, meta: DataMeta) -> np.ndarray | None:
    """(N, C, H, W) in [0, 1] when the data are pictures, else None."""
    if not meta.image_shape:
        return None
    x = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)
    return np.clip(x.reshape(len(x), *meta.image_shape), 0, 1)


def grid_size(n: int, ncol: int, image_shape: tuple[int, ...]) -> tuple[int, int]:
    """(width, height) in pixels of a grid of ``n`` images with ``ncol`` columns."""
    _, h, w = image_shape
    f = max(1, math.ceil(MIN_CELL / max(h, w)))
    nrow = math.ceil(n / ncol)
    return ncol * (w * f + PAD) + PAD, nrow * (h * f + PAD) + PAD


def image_grid(images: np.ndarray, ncol: int) -> np.ndarray:
    """Tile (N, C, H, W) images in [0, 1] into one uint8 picture (enlarged, gray padding)."""
    n, c, h, w = images.shape
    f = max(1, math.ceil(MIN_CELL / max(h, w)))
    big = images.repeat(f, 2).repeat(f, 3)  # (N, C, hf, wf)
    nrow = math.ceil(n / ncol)
    width, height = grid_size(n, ncol, (c, h, w))
    canvas = np.full((c if c in (1, 3) else 1, height, width), 0.5, np.float32)
    for i in range(n):
        r, col = divmod(i, ncol)
        y0, x0 = PAD + r * (h * f + PAD), PAD + col * (w * f + PAD)
        canvas[:, y0 : y0 + h * f, x0 : x0 + w * f] = big[i, : canvas.shape[0]]
    assert nrow * (h * f + PAD) + PAD == height
    return (canvas.transpose(1, 2, 0) * 255).round().astype(np.uint8)


def save_grid(images: np.ndarray, path: str | Path, *, ncol: int = 8) -> Path:
    return save_png(image_grid(images, ncol), path)


def pairs_grid(originals: np.ndarray, reconstructions: np.ndarray, *, ncol: int = 8) -> np.ndarray:
    """Rows of originals, each followed by a row of their reconstructions."""
    rows = []
    for i in range(0, len(originals), ncol):
        rows += [originals[i : i + ncol], reconstructions[i : i + ncol]]
    rows = [np.concatenate([r, np.zeros((ncol - len(r), *r.shape[1:]), r.dtype)]) for r in rows]
    return np.concatenate(rows)


def figure(path: str | Path, draw, *, size=(6.0, 4.0)) -> Path:
    """Run ``draw(fig)`` on a fresh figure with its own Agg canvas and save it as PNG. No pyplot: no
    global figure state to close, and a second less at the start of the first picture."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    draw(fig)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png"))
    return path


def curves(records: list[dict], path: str | Path, *, shift: float = 0.0, noun: str = "example") -> Path:
    """Train/validation ELBO (mean, and the validation median when the records hold
    ``val_elbo_median``) and KL per epoch, in nats per ``noun``; a dotted line at the best epoch.
    ``shift`` (the preprocessing's log-Jacobian) puts model-space ELBOs into the data's units."""
    epochs = [r["epoch"] for r in records]
    marker = "o" if len(records) <= 20 else None
    score = "val_elbo" if records and "val_elbo" in records[0] else "train_elbo"
    best = max(records, key=lambda r: r.get(score, -math.inf))["epoch"] if records else None

    def draw(fig):
        a, b = fig.subplots(1, 2)
        for key, label, style in (("train_elbo", "train, mean", "-"), ("val_elbo", "validation, mean", "-"),
                                  ("val_elbo_median", "validation, median", "--")):
            if records and key in records[0]:
                a.plot(epochs, [r[key] + shift for r in records], style, marker=marker, ms=3, label=label)
        for key, label in (("train_kl", "train"), ("val_kl", "validation")):
            if records and key in records[0]:
                b.plot(epochs, [r[key] for r in records], marker=marker, ms=3, label=label)
        for ax in (a, b):
            ax.xaxis.get_major_locator().set_params(integer=True)
            if best is not None:
                ax.axvline(best, color="gray", ls=":", lw=1, label=f"best epoch ({best})")
            ax.legend(fontsize=8)
        a.set(title="ELBO (higher is better)", xlabel="epoch", ylabel=f"nats per {noun}")
        b.set(title="KL(q(z|x) || p(z))", xlabel="epoch", ylabel=f"nats per {noun}")
    return figure(path, draw, size=(9, 3.5))


def latent_map(z: np.ndarray, path: str | Path, *, y: np.ndarray | None = None,
               class_names: list[str] = (), title: str = "Latent means of the test set") -> Path:
    """Latent means in 2-D (the latents themselves when L = 2, else their first two principal
    components), coloured by label when there are labels."""
    z = np.asarray(z, np.float64)
    if z.shape[1] == 2:
        xy, labels = z, ("z0", "z1")
    elif z.shape[1] == 1:
        xy, labels = np.column_stack([z[:, 0], np.zeros(len(z))]), ("z0", "")
    else:
        centred = z - z.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy, labels = centred @ vt[:2].T, ("PC 1 of latent means", "PC 2")

    def draw(fig):
        ax = fig.subplots()
        if y is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.7)
        else:
            for k in np.unique(y):
                sel = y == k
                name = class_names[k] if k < len(class_names) else str(k)
                ax.scatter(xy[sel, 0], xy[sel, 1], s=6, alpha=0.7, label=name)
            if len(np.unique(y)) <= 20:
                ax.legend(markerscale=2, fontsize=7, loc="best")
        ax.set(xlabel=labels[0], ylabel=labels[1], title=title)
    return figure(path, draw, size=(5.5, 5))


def feature_plots(real: pd.DataFrame, other: pd.DataFrame, path: str | Path, *, kind: str,
                  max_features: int = 12) -> Path:
    """Per feature: histograms of real vs sampled values (``kind="samples"``) or a scatter of
    original vs reconstructed values (``kind="reconstructions"``); categories as frequency bars."""
    cols = list(real.columns)[:max_features]
    ncol = min(4, len(cols))
    nrow = math.ceil(len(cols) / ncol)
    name = "sampled" if kind == "samples" else "reconstructed"

    def draw(fig):
        axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
        for ax, c in zip(axes, cols, strict=False):
            numeric = pd.api.types.is_numeric_dtype(real[c])
            if not numeric:
                first = "real" if kind == "samples" else "original"
                counts = pd.DataFrame({first: real[c].value_counts(normalize=True),
                                       name: other[c].value_counts(normalize=True)}).fillna(0)
                counts.plot.bar(ax=ax, legend=False, rot=0)
                ax.set(ylabel="fraction")
                ax.legend(fontsize=7)
            elif kind == "samples":
                bins = np.histogram_bin_edges(np.concatenate([real[c], other[c]]).astype(float), 30)
                ax.hist(real[c], bins=bins, alpha=0.5, density=True, label="real")
                ax.hist(other[c], bins=bins, alpha=0.5, density=True, label="sampled")
                ax.set(ylabel="density")
                ax.legend(fontsize=7)
            else:
                ax.scatter(real[c], other[c], s=4, alpha=0.6)
                lo, hi = float(np.min(real[c])), float(np.max(real[c]))
                ax.plot([lo, hi], [lo, hi], color="gray", lw=0.8)
                ax.set(xlabel="original", ylabel="reconstructed")
            ax.set_title(str(c), fontsize=8)
        for ax in axes[len(cols):]:
            ax.axis("off")
    return figure(path, draw, size=(3 * ncol, 2.6 * nrow))


def draw_run_pictures(run_dir: str | Path, model, meta: DataMeta, x: torch.Tensor, y: torch.Tensor | None,
                      records: list[dict], *, n: int = 64) -> list[Path]:
    """samples.png, reconstructions.png, traversals.png (pictures only), latent.png and curves.png."""
    from vaekit.evaluate import kl_per_dimension, posterior_means
    from vaekit.generate import decode_mean, reconstruct, sample, traversal_latents

    run_dir = Path(run_dir)
    noun = "image" if meta.image_shape else ("row" if meta.kind == "table" else "example")
    written = [curves(records, run_dir / "curves.png", shift=meta.log_jacobian, noun=noun)] if records else []
    samples = sample(model, n)
    originals = x[:32] if meta.image_shape else x[:500]  # 16 image pairs; enough points for a scatter
    recons = reconstruct(model, originals)
    if meta.image_shape:
        written.append(save_grid(as_images(samples, meta), run_dir / "samples.png"))
        written.append(save_png(image_grid(pairs_grid(as_images(originals, meta), as_images(recons, meta)), 8),
                                run_dir / "reconstructions.png"))
        kl = kl_per_dimension(model, x)
        order = (torch.argsort(kl, descending=True) if kl is not None else torch.arange(model.latent_dim))
        dims = order[: min(10, model.latent_dim)].tolist()
        z = traversal_latents(model.latent_dim, dims, steps=9)
        written.append(save_grid(as_images(decode_mean(model, z), meta), run_dir / "traversals.png", ncol=9))
    else:
        real = as_frame(to_user(x.numpy(), meta), meta.feature_names)
        draws = sample(model, max(n, len(x)), mean=False)  # x ~ p(x|z): means would hide the spread
        fake = as_frame(to_user(draws.numpy(), meta), meta.feature_names)
        written.append(feature_plots(real, fake, run_dir / "samples.png", kind="samples"))
        rec = as_frame(to_user(recons.numpy(), meta), meta.feature_names)
        written.append(feature_plots(real.iloc[: len(rec)], rec, run_dir / "reconstructions.png",
                                     kind="reconstructions"))
    z = posterior_means(model, x).numpy()
    written.append(latent_map(z, run_dir / "latent.png", y=None if y is None else y.numpy(),
                              class_names=meta.class_names, title=f"Latent means of the test {noun}s"))
    return written
