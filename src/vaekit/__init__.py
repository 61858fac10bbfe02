"""vaekit: variational autoencoders that work end to end on real data.

Every public name loads on first use (PEP 562), so ``import vaekit`` and ``vaekit --help`` do not
import torch: the core (models, objectives, training, evaluation, the scikit-learn front door ``VAE``)
and the applications (compression, anomaly detection, semi-supervised learning, ...) are imported
when you touch them. ``vaekit.load(path)`` opens any directory vaekit writes; ``vaekit.evaluate`` is
the evaluation module (``vaekit.evaluate.evaluate(model, x)`` is the function).
"""

from importlib import import_module

__version__ = "0.2.0"

NAMES = {
    "VAE": "vaekit.estimators",
    "ModelConfig": "vaekit.config", "TrainConfig": "vaekit.config", "build_model": "vaekit.config",
    "active_units": "vaekit.evaluate", "bits_per_dim": "vaekit.evaluate", "dataset_elbo": "vaekit.evaluate",
    "log_likelihood": "vaekit.evaluate",
    "load": "vaekit.loading", "as_model": "vaekit.loading",
    "ConditionalVAE": "vaekit.models", "GaussianEncoder": "vaekit.models", "SemiSupervisedVAE": "vaekit.models",
    "Terms": "vaekit.objectives", "elbo": "vaekit.objectives", "iwae_bound": "vaekit.objectives",
    "TrainingDiverged": "vaekit.train", "fit": "vaekit.train",
    "HierarchicalVAE": "vaekit.hierarchical",
    "compress": "vaekit.apps.compression.codec", "decompress": "vaekit.apps.compression.codec",
    "AnomalyDetector": "vaekit.apps.anomaly", "TimeSeriesDetector": "vaekit.apps.anomaly",
    "SemiSupervisedClassifier": "vaekit.apps.semisupervised", "augment": "vaekit.apps.semisupervised.augment",
    "linear_probe": "vaekit.apps.semisupervised",
    "Recommender": "vaekit.apps.recommend", "ContentRecommender": "vaekit.apps.recommend",
    "TabularSynthesizer": "vaekit.apps.tables", "MoleculeVAE": "vaekit.apps.molecules",
}
ALIASES = {"VAEModel": ("vaekit.models", "VAE"), "export": ("vaekit.serve.export", "export")}
MODULES = ("evaluate", "tabular")  # sub-modules reachable as attributes


def __getattr__(name: str):
    if name in NAMES:
        value = getattr(import_module(NAMES[name]), name)
    elif name in ALIASES:
        module, attr = ALIASES[name]
        value = getattr(import_module(module), attr)
    elif name in MODULES:
        value = import_module(f"vaekit.{name}")
    else:
        raise AttributeError(f"module 'vaekit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *NAMES, *ALIASES, *MODULES})


__all__ = [*NAMES, *ALIASES, *MODULES, "__version__"]
