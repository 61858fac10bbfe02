"""MOSES's structural filters (Polykovskiy et al. 2020, section "Filters").

A molecule passes when it has no ring of 8 or more atoms, no charged atom, only the atoms C, N, S, O,
F, Cl, Br, H, and matches none of the medicinal-chemistry filters (MCF) and PAINS alerts; matching is
done on the molecule with explicit hydrogens, as MOSES does.

How this differs from MOSES's ``mol_passes_filters``: the 22 MCF SMARTS below are the ones MOSES ships
(``moses/metrics/mcf.csv``, MIT licence, Copyright 2018 Insilico Medicine); the PAINS alerts come from
RDKit's FilterCatalog (PAINS_A/B/C, 480 patterns, RDKit's translation of Baell & Holloway 2010) rather
than MOSES's ``wehi_pains.csv`` (480 SMARTS of the same origin), so a borderline molecule could be
judged differently; on 3,000 MOSES test molecules and 2,000 ZINC test molecules (JT-VAE subset) the two
gave the same verdict for every molecule (checked once against the csv, which is not shipped here).
MOSES's last step (the SMILES written without stereo must parse again) is kept.
"""

from __future__ import annotations

import functools

from rdkit import Chem
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
MAX_RING = 7  # rings of 8 atoms or more fail

MCF_SMARTS = (
    "[#6]=&!@[#6]-[#6]#[#7]", "[#6]=&!@[#6]-[#16](=[#8])=[#8]", "[#6]=&!@[#6&!H0]-&!@[#6](=[#8])-&!@[#7]",
    "[H]C([H])([#6])[F,Cl,Br,I]", "[#6]1-[#8]-[#6]-1", "[#6]-[#7]=[#6]=[#8]", "[#6&!H0]=[#8]",
    "[#6](=&!@[#7&!H0])-&!@[#6,#7,#8,#16]", "[#6]1-[#7]-[#6]-1", "[#6]~&!@[#7]~&!@[#7]~&!@[#6]",
    "[#7]=&!@[#7]", "[H][#6]-1=[#6]([H])-[#6]=[#6](-*)-[#8]-1", "[H][#6]-1=[#6]([H])-[#6]=[#6](-*)-[#16]-1",
    "[#17,#35,#53]-c(:*):[!#1!#6]:*", "[H][#7]([H])-[#6]-1=[#6]-[#6]=[#6]-[#6]=[#6]-1", "[#16]~[#16]",
    "[#7]~&!@[#7]~&!@[#7]", "[#7]-&!@[#6&!H0&!H1]-&!@[#7]", "[#6&!H0](-&!@[#8])-&!@[#8]",
    "[#35].[#35].[#35]", "[#17].[#17].[#17].[#17]", "[#9].[#9].[#9].[#9].[#9].[#9].[#9]",
)


@functools.cache
def _mcf():
    return tuple(Chem.MolFromSmarts(s) for s in MCF_SMARTS)


@functools.cache
def _pains() -> FilterCatalog:
    params = FilterCatalogParams()
    params.AddCatalog(FilterCatalogParams.FilterCatalogs.PAINS)
    return FilterCatalog(params)


def passes_filters(mol) -> bool:
    """True when an RDKit molecule passes MOSES's filters (see the module docstring)."""
    if mol is None:
        return False
    if any(len(r) > MAX_RING for r in mol.GetRingInfo().AtomRings()):
        return False
    atoms = mol.GetAtoms()
    if any(a.GetFormalCharge() != 0 for a in atoms) or any(a.GetSymbol() not in ALLOWED_ATOMS for a in atoms):
        return False
    with_h = Chem.AddHs(mol)
    if any(with_h.HasSubstructMatch(p) for p in _mcf()) or _pains().HasMatch(with_h):
        return False
    flat = Chem.MolToSmiles(mol, isomericSmiles=False)
    return bool(flat) and Chem.MolFromSmiles(flat) is not None
