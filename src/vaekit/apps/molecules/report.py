"""Pictures and the fit report of a molecule model: a grid of sampled molecules and an interpolation
strip drawn by RDKit, learning curves (matplotlib), a metric table; ``report.md`` ties them together.
Every file is written atomically."""

from __future__ import annotations

import math
from pathlib import Path

from vaekit.apps.molecules.tokens import to_mol
from vaekit.atomic import atomic_write


def draw_grid(smiles: list[str | None], path: str | Path, *, per_row: int = 6, size: int = 220,
              legends: list[str] | None = None) -> Path:
    """PNG of molecules drawn by RDKit (invalid entries are skipped)."""
    from rdkit.Chem import Draw

    pairs = [(to_mol(s), (legends[i] if legends else "")) for i, s in enumerate(smiles) if s]
    pairs = [(m, lg) for m, lg in pairs if m is not None]
    if not pairs:
        raise ValueError("No valid molecules to draw.")
    mols, labels = zip(*pairs)
    img = Draw.MolsToGridImage(list(mols), molsPerRow=min(per_row, len(mols)), subImgSize=(size, size),
                               legends=list(labels))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda p: img.save(p, format="PNG"))


def plot_curves(records: list[dict], path: str | Path) -> Path:
    """Training ELBO and KL (nats per molecule) against epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].plot(epochs, [r["train_elbo"] for r in records], label="train")
    if any("val_elbo" in r for r in records):
        axes[0].plot(epochs, [r.get("val_elbo", math.nan) for r in records], label="validation")
    axes[0].set(xlabel="epoch", ylabel="ELBO (nats per molecule)")
    axes[0].legend()
    axes[1].plot(epochs, [r["train_kl"] for r in records])
    axes[1].set(xlabel="epoch", ylabel="KL (nats per molecule)")
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)
    return path


def metric_table(rows: dict[str, dict], *, digits: int = 3) -> str:
    """Markdown table: one row per name, one column per metric (union of keys, in first-seen order)."""
    cols: list[str] = []
    for r in rows.values():
        cols += [c for c in r if c not in cols]
    lines = ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(f"{v:.{digits}f}" if isinstance(v, float) else str(v))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_fit_report(vae, out: Path, *, metrics: dict, samples: list[str | None],
                     interpolation: tuple[str, str, list[str | None]] | None) -> Path:
    """``out/report.md`` with ``samples.png``, ``interpolation.png`` and ``curves.png`` beside it."""
    draw_grid(samples[:24], out / "samples.png")
    parts = ["# Molecule VAE fit report", "",
             f"Representation {vae.representation}, latent_dim {vae.latent_dim}, vocabulary {len(vae.vocabulary_)} "
             f"tokens, {vae.n_train_} training molecules ({vae.n_invalid_} invalid skipped) and "
             f"{vae.random_strings_} other SMILES of each, "
             f"{vae.epochs_trained_} epochs in {vae.train_seconds_:.0f} s, active units {vae.active_units_} "
             f"of {vae.latent_dim}.", "", "## Metrics (sampled molecules)", "",
             metric_table({"model": metrics}), "", "## Sampled molecules", "", "![samples](samples.png)", ""]
    if interpolation is not None:
        a, b, path = interpolation
        draw_grid(path, out / "interpolation.png", per_row=len(path), size=180)
        parts += ["## Interpolation", "", f"From `{a}` to `{b}` (greedy decodings of evenly spaced latent points).",
                  "", "![interpolation](interpolation.png)", ""]
    records = getattr(vae, "history_", None)
    records = records.records if records is not None else getattr(vae, "history_records_", [])
    if records:
        plot_curves(records, out / "curves.png")
        parts += ["## Learning curves", "", "![curves](curves.png)", ""]
    path = out / "report.md"
    atomic_write(path, lambda p: p.write_text("\n".join(parts)))
    return path
