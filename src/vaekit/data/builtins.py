"""Built-in datasets, bundled with installed packages: no download. Each comes with training defaults
that make ``vaekit train NAME`` finish in well under a minute on a laptop CPU."""

from __future__ import annotations

from vaekit.data.readers import Raw


def digits() -> Raw:
    """scikit-learn's 1,797 handwritten digits, 8x8 pixels with values 0..16, scaled to [0, 1]. Read
    from the CSV file scikit-learn ships (the same array ``sklearn.datasets.load_digits`` returns,
    tested) without importing scikit-learn, which costs seconds at the start of the README's job."""
    import importlib.util
    from pathlib import Path

    import numpy as np

    spec = importlib.util.find_spec("sklearn")  # locates the package without running it
    where = next(iter(spec.submodule_search_locations or []), None) if spec is not None else None
    path = Path(where or ".") / "datasets" / "data" / "digits.csv.gz"
    if where is None or not path.is_file():  # another layout: let scikit-learn read it
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return Raw((bunch.images / 16.0).astype("float32")[:, None], bunch.target)
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)  # 64 pixels, then the label
    images = (table[:, :-1] / 16.0).astype("float32").reshape(-1, 1, 8, 8)
    return Raw(images, table[:, -1].astype(int))


BUILTINS = {"digits": digits}

# Per-dataset defaults, below any config file and --set (configs/digits.toml repeats them).
DEFAULTS = {
    "digits": {
        "model": {"latent_dim": 8, "network": "mlp", "hidden": [256, 128]},
        "train": {"epochs": 80, "batch_size": 64, "lr": 4e-3, "lr_schedule": "none", "lr_warmup": 0.0},
    },
}
