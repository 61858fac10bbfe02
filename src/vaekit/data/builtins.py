"""Built-in datasets, bundled with installed packages: no download. Each comes with training defaults
that make ``vaekit train NAME`` finish in well under a minute on a laptop CPU."""

from __future__ import annotations

from vaekit.data.readers import Raw


def digits() -> Raw:
    """scikit-learn's 1,797 handwritten digits, 8x8 pixels with values 0..16, scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return Raw((bunch.images / 16.0).astype("float32")[:, None], bunch.target)  # (N, 1, 8, 8)


BUILTINS = {"digits": digits}

# Per-dataset defaults, below any config file and --set (configs/digits.toml repeats them).
DEFAULTS = {
    "digits": {
        "model": {"latent_dim": 8, "network": "mlp", "hidden": [256, 128]},
        "train": {"epochs": 80, "batch_size": 64, "lr": 4e-3},
    },
}
