"""vaekit: variational autoencoders that work end to end on real data."""

from vaekit.config import ModelConfig, TrainConfig, build_model
from vaekit.estimators import VAE
from vaekit.evaluate import active_units, bits_per_dim, dataset_elbo, evaluate, log_likelihood
from vaekit.models import VAE as VAEModel
from vaekit.models import ConditionalVAE, GaussianEncoder
from vaekit.objectives import Terms, elbo, iwae_bound
from vaekit.train import TrainingDiverged, fit

__version__ = "0.1.0"
__all__ = [
    "VAE",
    "ConditionalVAE",
    "GaussianEncoder",
    "ModelConfig",
    "Terms",
    "TrainConfig",
    "TrainingDiverged",
    "VAEModel",
    "active_units",
    "bits_per_dim",
    "build_model",
    "dataset_elbo",
    "elbo",
    "evaluate",
    "fit",
    "iwae_bound",
    "log_likelihood",
]
