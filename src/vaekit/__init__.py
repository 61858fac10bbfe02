"""vaekit: variational autoencoders that work end to end on real data.

The core (models, objectives, training, evaluation, the scikit-learn front door ``VAE``) is imported
eagerly; the applications (compression, anomaly detection, semi-supervised learning) load on first use.
"""

from importlib import import_module

from vaekit.config import ModelConfig, TrainConfig, build_model
from vaekit.estimators import VAE
from vaekit.evaluate import active_units, bits_per_dim, dataset_elbo, evaluate, log_likelihood
from vaekit.models import VAE as VAEModel
from vaekit.models import ConditionalVAE, GaussianEncoder
from vaekit.objectives import Terms, elbo, iwae_bound
from vaekit.train import TrainingDiverged, fit

__version__ = "0.1.0"

APPS = {
    "compress": "vaekit.apps.compression",
    "decompress": "vaekit.apps.compression",
    "AnomalyDetector": "vaekit.apps.anomaly",
    "TimeSeriesDetector": "vaekit.apps.anomaly_timeseries",
    "SemiSupervisedVAE": "vaekit.apps.semisupervised",
    "SemiSupervisedClassifier": "vaekit.apps.semisupervised_estimator",
    "augment": "vaekit.apps.augment",
    "linear_probe": "vaekit.apps.semisupervised_features",
}


def __getattr__(name: str):
    if name in APPS:
        return getattr(import_module(APPS[name]), name)
    raise AttributeError(f"module 'vaekit' has no attribute {name!r}")


__all__ = [
    "VAE", "ModelConfig", "TrainConfig", "build_model", "active_units", "bits_per_dim", "dataset_elbo",
    "evaluate", "log_likelihood", "VAEModel", "ConditionalVAE", "GaussianEncoder", "Terms", "elbo",
    "iwae_bound", "TrainingDiverged", "fit", *APPS,
]
