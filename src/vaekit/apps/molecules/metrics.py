"""MOSES metrics of generated molecules (Polykovskiy et al. 2020), written from the paper and its
reference implementation's definitions (github.com/molecularsets/moses, ``moses/metrics``):

- valid: fraction of generated strings RDKit parses into a non-empty molecule;
- unique@k: distinct canonical SMILES among the first k valid molecules, divided by their number
  (when fewer than k are valid, all of them; MOSES does the same, with a warning);
- novelty: fraction of the distinct valid molecules not in the training set;
- IntDiv_p: 1 - (mean over all ordered pairs (i, j), i = j included, of T(i, j)^p)^(1/p) over the
  valid molecules, T the Tanimoto similarity of Morgan fingerprints (radius 2, 1024 bits);
- SNN: mean over valid generated molecules of the largest T to a reference (test) molecule;
- Frag / Scaf: cosine similarity of BRICS-fragment counts / Bemis-Murcko scaffold counts between the
  valid generated molecules and the reference set (as MOSES, only scaffolds with two or more rings
  are counted);
- Filters: fraction of valid molecules passing MOSES's filters (``filters.py`` says how ours differ);
- FCD: Fréchet distance between Gaussians fitted to ChemNet activations (``fcd.py``).
Every metric after ``valid`` is computed on the valid molecules, in canonical form, duplicates kept,
as MOSES does.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import BRICS, rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

from vaekit.apps.molecules.filters import passes_filters
from vaekit.apps.molecules.tokens import canonical, to_mol

_MORGAN_BITS = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)


def valid_canonical(smiles: list[str | None]) -> list[str]:
    """Canonical SMILES of the valid molecules, in order, duplicates kept."""
    return [c for c in (canonical(s) if s else None for s in smiles) if c is not None]


def fraction_valid(smiles: list[str | None]) -> float:
    if not smiles:
        raise ValueError("No generated molecules to evaluate.")
    return len(valid_canonical(smiles)) / len(smiles)


def unique_at(valid: list[str], k: int) -> float:
    """Distinct molecules among the first k valid ones, divided by min(k, len(valid))."""
    head = valid[:k]
    return len(set(head)) / len(head) if head else 0.0


def novelty(valid: list[str], train: set[str]) -> float:
    distinct = set(valid)
    return len(distinct - train) / len(distinct) if distinct else 0.0


def fingerprints(mols) -> torch.Tensor:
    """Morgan bit fingerprints (radius 2, 1024 bits) as a float tensor (N, 1024)."""
    return torch.from_numpy(np.stack([_MORGAN_BITS.GetFingerprintAsNumPy(m) for m in mols]).astype(np.float32))


def _tanimoto_blocks(a: torch.Tensor, b: torch.Tensor, block: int = 4096):
    """Yield (rows, T) with T the Tanimoto similarities of a[rows] to every row of b."""
    nb = b.sum(1)
    for start in range(0, len(a), block):
        x = a[start:start + block]
        inter = x @ b.T
        union = x.sum(1, keepdim=True) + nb - inter
        t = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))  # two empty prints: 1
        yield slice(start, start + len(x)), t


def snn(gen_fps: torch.Tensor, ref_fps: torch.Tensor) -> float:
    """Mean nearest-neighbour Tanimoto similarity of generated to reference molecules."""
    best = torch.cat([t.max(1).values for _, t in _tanimoto_blocks(gen_fps, ref_fps)])
    return float(best.double().mean())


def internal_diversity(fps: torch.Tensor, p: int = 1) -> float:
    total = sum(float((t.double() ** p).sum()) for _, t in _tanimoto_blocks(fps, fps))
    return 1.0 - (total / len(fps) ** 2) ** (1.0 / p)


def fragments(mols) -> Counter:
    out: Counter = Counter()
    for m in mols:
        out.update(Chem.MolToSmiles(BRICS.BreakBRICSBonds(m)).split("."))
    return out


def scaffolds(mols, min_rings: int = 2) -> Counter:
    out: Counter = Counter()
    for m in mols:
        try:
            scaf = MurckoScaffold.GetScaffoldForMol(m)
        except (ValueError, RuntimeError):
            continue
        text = Chem.MolToSmiles(scaf)
        if text and scaf.GetRingInfo().NumRings() >= min_rings:
            out[text] += 1
    return out


def cosine(a: Counter, b: Counter) -> float:
    if not a or not b:
        return float("nan")
    keys = sorted(set(a) | set(b))
    va, vb = (np.array([c.get(k, 0) for k in keys], dtype=np.float64) for c in (a, b))
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


class Reference:
    """Statistics of a reference set (e.g. the test molecules) computed once and reused."""

    def __init__(self, smiles: list[str], *, fcd: bool = True):
        self.smiles = valid_canonical(smiles)
        if not self.smiles:
            raise ValueError("The reference set holds no valid molecules.")
        mols = [to_mol(s) for s in self.smiles]
        self.fps = fingerprints(mols)
        self.fragments, self.scaffolds = fragments(mols), scaffolds(mols)
        if fcd:
            from vaekit.apps.molecules.fcd import gaussian_stats
            self.fcd_stats = gaussian_stats(self.smiles)
        else:
            self.fcd_stats = None


def moses_metrics(generated: list[str | None], *, train: list[str] | set[str] | None = None,
                  reference: Reference | None = None, ks: tuple[int, ...] = (1000, 10000)) -> dict:
    """Every metric above for a list of generated strings (None = a failed generation). ``train``
    (SMILES; canonicalised here unless a set of canonical SMILES) gives novelty, ``reference`` (the test
    set) gives FCD, SNN, Frag and Scaf."""
    out: dict = {"n": len(generated), "valid": fraction_valid(generated)}
    valid = valid_canonical(generated)
    for k in ks:
        out[f"unique@{k}"] = unique_at(valid, k) if valid else float("nan")
    if not valid:
        return out
    mols = [to_mol(s) for s in valid]
    fps = fingerprints(mols)
    if train is not None:
        train_set = train if isinstance(train, set) else set(valid_canonical(list(train)))
        out["novelty"] = novelty(valid, train_set)
    out["IntDiv"] = internal_diversity(fps, 1)
    out["IntDiv2"] = internal_diversity(fps, 2)
    out["filters"] = float(np.mean([passes_filters(m) for m in mols]))
    if reference is not None:
        if reference.fcd_stats is not None:
            from vaekit.apps.molecules.fcd import frechet_distance, gaussian_stats
            out["FCD"] = frechet_distance(*gaussian_stats(valid), *reference.fcd_stats)
        out["SNN"] = snn(fps, reference.fps)
        out["Frag"] = cosine(fragments(mols), reference.fragments)
        out["Scaf"] = cosine(scaffolds(mols), reference.scaffolds)
    return out
