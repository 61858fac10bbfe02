"""Learning from few labels: M2 and M1+M2 (Kingma et al. 2014), class-conditional generation, data
augmentation and linear probes of embeddings."""

from vaekit.apps.semisupervised.augment import augment, conditional_sample
from vaekit.apps.semisupervised.estimator import SemiSupervisedClassifier
from vaekit.apps.semisupervised.features import linear_probe

__all__ = ["SemiSupervisedClassifier", "augment", "conditional_sample", "linear_probe"]
