"""Molecules: a sequence VAE over SELFIES/SMILES tokens (``MoleculeVAE``), MOSES-style metrics
(``vaekit.apps.molecules.metrics``), latent property optimisation (``...optimize``) and the
``vaekit molecules`` commands (``...cli``). Needs RDKit, selfies and fcd-torch (``vaekit[molecules]``);
they load on first use, so registering the commands stays light."""

from importlib import import_module


def __getattr__(name: str):
    if name == "MoleculeVAE":
        return import_module("vaekit.apps.molecules.estimator").MoleculeVAE
    raise AttributeError(f"module 'vaekit.apps.molecules' has no attribute {name!r}")


__all__ = ["MoleculeVAE"]
