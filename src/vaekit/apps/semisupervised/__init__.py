"""Learning from few labels: M2 and M1+M2 (Kingma et al. 2014), class-conditional generation, data
augmentation (``vaekit.apps.semisupervised.augment.augment``, also ``vaekit.augment``) and linear probes of
embeddings. Names load on first use (the command line stays light)."""

from vaekit.lazy import lazy_names

NAMES = {"SemiSupervisedClassifier": "vaekit.apps.semisupervised.estimator",
         "conditional_sample": "vaekit.apps.semisupervised.augment",
         "linear_probe": "vaekit.apps.semisupervised.features"}


__getattr__ = lazy_names(__name__, NAMES)


__all__ = list(NAMES)
