"""Learning from few labels: M2 and M1+M2 (Kingma et al. 2014), class-conditional generation, data
augmentation (``vaekit.apps.semisupervised.augment.augment``, also ``vaekit.augment``) and linear probes of
embeddings. Names load on first use (the command line stays light)."""

from importlib import import_module

NAMES = {"SemiSupervisedClassifier": "vaekit.apps.semisupervised.estimator",
         "conditional_sample": "vaekit.apps.semisupervised.augment",
         "linear_probe": "vaekit.apps.semisupervised.features"}


def __getattr__(name: str):
    if name in NAMES:
        return getattr(import_module(NAMES[name]), name)
    raise AttributeError(f"module 'vaekit.apps.semisupervised' has no attribute {name!r}")


__all__ = list(NAMES)
