"""Estimators with scikit-learn conventions: the shared base and the ``VAE`` front door."""

from vaekit.estimators.base import Estimator
from vaekit.estimators.inputs import Inputs, check_array
from vaekit.estimators.vae import VAE

__all__ = ["VAE", "Estimator", "Inputs", "check_array"]
