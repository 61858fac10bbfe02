"""Molecular properties from RDKit, and fingerprint similarity.

``penalized_logp`` is the objective of JT-VAE's constrained optimisation (Jin et al. 2018, section
3.3; the scores in ``opt.test.logP-SA`` of the JT-VAE repository): Crippen logP minus the synthetic
accessibility score (Ertl & Schuffenhauer 2009, RDKit Contrib ``SA_Score``) minus the number of atoms
by which the largest ring exceeds six, unnormalised. ``similarity`` is the Tanimoto similarity of
Morgan count fingerprints of radius 2, the measure JT-VAE's optimisation constrains.
"""

from __future__ import annotations

from collections.abc import Callable

from rdkit import DataStructs
from rdkit.Chem import QED, Crippen, rdFingerprintGenerator
from rdkit.Contrib.SA_Score import sascorer  # reads RDKit's own fragment-score table on first use

from vaekit.apps.molecules.tokens import to_mol

_MORGAN_COUNTS = rdFingerprintGenerator.GetMorganGenerator(radius=2)


def logp(mol) -> float:
    """Crippen octanol-water partition coefficient (higher = more lipophilic)."""
    return float(Crippen.MolLogP(mol))


def qed(mol) -> float:
    """Quantitative estimate of drug-likeness in [0, 1] (Bickerton et al. 2012; higher is better)."""
    return float(QED.qed(mol))


def sa(mol) -> float:
    """Synthetic accessibility in [1, 10] (1 = easy to make; lower is better)."""
    return float(sascorer.calculateScore(mol))


def cycle_penalty(mol) -> int:
    """Atoms by which the largest ring exceeds six (0 without rings larger than six)."""
    rings = mol.GetRingInfo().AtomRings()
    return max([0, *(len(r) - 6 for r in rings)])


def penalized_logp(mol) -> float:
    """logP - SA - cycle penalty (higher is better), as in JT-VAE's optimisation tasks."""
    return logp(mol) - sa(mol) - cycle_penalty(mol)


PROPERTIES: dict[str, Callable] = {"logp": logp, "qed": qed, "sa": sa, "penalized_logp": penalized_logp}
MAXIMISE = {"logp": True, "qed": True, "sa": False, "penalized_logp": True}


def property_values(smiles: list[str | None], name: str) -> list[float | None]:
    """``name`` for each molecule (None where the SMILES is missing or invalid)."""
    if name not in PROPERTIES:
        raise ValueError(f"Unknown property {name!r}; choose one of {sorted(PROPERTIES)}.")
    out = []
    for s in smiles:
        mol = to_mol(s) if s else None
        out.append(None if mol is None else PROPERTIES[name](mol))
    return out


def morgan_counts(mol):
    return _MORGAN_COUNTS.GetSparseCountFingerprint(mol)


def similarity(a: str, b: str) -> float:
    """Tanimoto similarity of Morgan count fingerprints (radius 2) of two SMILES; 0 if either is invalid."""
    ma, mb = to_mol(a), to_mol(b)
    if ma is None or mb is None:
        return 0.0
    return float(DataStructs.TanimotoSimilarity(morgan_counts(ma), morgan_counts(mb)))
