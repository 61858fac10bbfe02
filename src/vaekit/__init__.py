"""vaekit: variational autoencoders that work end to end on real data.

The core (models, objectives, training, evaluation, the scikit-learn front door ``VAE``) is imported
eagerly; the applications (compression, anomaly detection, semi-supervised learning, recommendation,
molecules, synthetic tables, export and serving) load on first use. ``vaekit.load(path)`` opens any
directory vaekit writes.
"""

from importlib import import_module

from vaekit import evaluate  # the module: vaekit.evaluate.evaluate(model, x) is the function
from vaekit.config import ModelConfig, TrainConfig, build_model
from vaekit.estimators import VAE
from vaekit.evaluate import active_units, bits_per_dim, dataset_elbo, log_likelihood
from vaekit.loading import as_model, load
from vaekit.models import VAE as VAEModel
from vaekit.models import ConditionalVAE, GaussianEncoder, SemiSupervisedVAE
from vaekit.objectives import Terms, elbo, iwae_bound
from vaekit.train import TrainingDiverged, fit

__version__ = "0.2.0"

APPS = {
    "compress": "vaekit.apps.compression.codec",
    "decompress": "vaekit.apps.compression.codec",
    "AnomalyDetector": "vaekit.apps.anomaly",
    "TimeSeriesDetector": "vaekit.apps.anomaly",
    "SemiSupervisedClassifier": "vaekit.apps.semisupervised",
    "augment": "vaekit.apps.semisupervised",
    "linear_probe": "vaekit.apps.semisupervised",
    "HierarchicalVAE": "vaekit.hierarchical",
}


def __getattr__(name: str):
    if name in APPS:
        return getattr(import_module(APPS[name]), name)
    raise AttributeError(f"module 'vaekit' has no attribute {name!r}")


__all__ = [
    "VAE", "ModelConfig", "TrainConfig", "build_model", "active_units", "bits_per_dim", "dataset_elbo",
    "evaluate", "log_likelihood", "VAEModel", "ConditionalVAE", "GaussianEncoder", "SemiSupervisedVAE", "Terms",
    "elbo", "iwae_bound", "TrainingDiverged", "fit", "load", "as_model", "__version__", *APPS,
]
