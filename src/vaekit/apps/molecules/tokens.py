"""Molecules as token rows: canonical SMILES, SMILES and SELFIES tokenisers, a learned vocabulary.

A molecule is always handled as its RDKit canonical (isomeric) SMILES first, so one molecule has one
string and one token row whatever SMILES the user wrote. SELFIES (Krenn et al. 2020) is the default
representation: every token sequence decodes to a molecule. The vocabulary is learned from the
training molecules and saved with the model; a token it lacks maps to the unknown slot.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import selfies as sf
import torch
from rdkit import Chem, RDLogger

from vaekit.sequence import SpecialTokens

SPECIAL_NAMES = ("<pad>", "<start>", "<end>", "<unk>")  # ids 0..3, as SpecialTokens()
SPECIALS = SpecialTokens()
REPRESENTATIONS = ("selfies", "smiles", "kekule_smiles")
SMILES_FORMS = ("smiles", "kekule_smiles")  # token rows that spell a SMILES string directly

# Schwaller et al. 2019 (Molecular Transformer) SMILES regex; the final "." catches any other character
# so that the tokens always join back into the input string.
SMILES_REGEX = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9]|.)")

RDLogger.DisableLog("rdApp.*")  # RDKit's parse warnings go to stderr otherwise; invalid input is reported by us


def to_mol(smiles: str):
    """An RDKit molecule, or None when ``smiles`` is not a valid, non-empty molecule."""
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    try:
        return Chem.MolFromSmiles(smiles.strip())
    except Exception:  # RDKit raises on some inputs instead of returning None
        return None


def canonical(smiles: str) -> str | None:
    """RDKit canonical isomeric SMILES, or None for an invalid or empty molecule."""
    mol = to_mol(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return Chem.MolToSmiles(mol)


def canonicalise(smiles: Iterable[str]) -> tuple[list[str | None], list[int]]:
    """Canonical SMILES for each input (None where invalid) and the positions of the invalid ones."""
    out = [canonical(s) for s in smiles]
    return out, [i for i, c in enumerate(out) if c is None]


def smiles_tokens(smiles: str) -> list[str]:
    return SMILES_REGEX.findall(smiles)


def kekule(smiles: str) -> str:
    """The canonical SMILES in Kekule form: alternating single and double bonds, no aromatic atoms
    (RDKit's canonical atom order; the aromatic form comes back when the string is read again)."""
    mol = to_mol(smiles)
    if mol is None:
        return smiles
    try:
        Chem.Kekulize(mol, clearAromaticFlags=True)
    except Exception:  # not kekulisable: keep the aromatic form
        return smiles
    return Chem.MolToSmiles(mol, kekuleSmiles=True)


def selfies_tokens(smiles: str) -> list[str]:
    """SELFIES tokens of a canonical SMILES. Molecules outside SELFIES' default valence rules are
    encoded without the check (``strict=False``); a molecule SELFIES cannot encode at all becomes
    an empty list (scored as the unknown token)."""
    try:
        return list(sf.split_selfies(sf.encoder(smiles, strict=False)))
    except Exception:
        return []


def randomized(smiles: str, n: int, rng, representation: str) -> list[list[str]]:
    """Token lists of ``n`` other SMILES of one molecule (SMILES enumeration, Bjerrum 2017; Arus-Pous et
    al. 2019): the atoms renumbered by a random permutation from ``rng`` (a numpy Generator), written
    from the first atom without canonical ordering, so the string starts elsewhere and walks the rings and
    branches in another order; in Kekule form for "kekule_smiles". Empty for an invalid molecule."""
    mol = to_mol(smiles)
    if mol is None or n < 1:
        return []
    kekulise = representation == "kekule_smiles"
    if kekulise:
        try:
            Chem.Kekulize(mol, clearAromaticFlags=True)
        except Exception:  # not kekulisable: random strings in the aromatic form, as ``kekule`` keeps it
            kekulise = False
    out = []
    for _ in range(int(n)):
        order = [int(i) for i in rng.permutation(mol.GetNumAtoms())]
        text = Chem.MolToSmiles(Chem.RenumberAtoms(mol, order), canonical=False, kekuleSmiles=kekulise)
        out.append(selfies_tokens(text) if representation == "selfies" else smiles_tokens(text))
    return out


def to_tokens(smiles: str, representation: str) -> list[str]:
    """Tokens of one canonical SMILES in ``representation`` ("selfies", "smiles" or "kekule_smiles")."""
    if representation == "selfies":
        return selfies_tokens(smiles)
    if representation == "smiles":
        return smiles_tokens(smiles)
    if representation == "kekule_smiles":
        return smiles_tokens(kekule(smiles))
    raise ValueError(f"Unknown representation {representation!r}; choose one of {', '.join(REPRESENTATIONS)}.")


def raw_string(tokens: Sequence[str], representation: str) -> str:
    """The SMILES a token sequence spells, unchecked ("" when SELFIES cannot decode it)."""
    text = "".join(tokens)
    if representation == "selfies":
        try:
            return sf.decoder(text) or ""
        except Exception:
            return ""
    return text


def from_tokens(tokens: Sequence[str], representation: str) -> str | None:
    """Canonical SMILES of a token sequence, or None when it is not a valid molecule."""
    text = raw_string(tokens, representation)
    return canonical(text) if text else None


@dataclass
class Vocabulary:
    """Token strings by id: the four special symbols, then the learned tokens (most frequent first)."""

    tokens: list[str]

    @classmethod
    def learn(cls, token_lists: Iterable[Sequence[str]]) -> Vocabulary:
        counts = Counter(t for tokens in token_lists for t in tokens)
        learned = sorted(counts, key=lambda t: (-counts[t], t))
        return cls([*SPECIAL_NAMES, *learned])

    def __post_init__(self):
        if tuple(self.tokens[:4]) != SPECIAL_NAMES:
            raise ValueError(f"A vocabulary starts with {SPECIAL_NAMES}; this one starts with {self.tokens[:4]}.")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, token_lists: Sequence[Sequence[str]]) -> tuple[torch.Tensor, Counter]:
        """Rows ``ids, end, pad...`` (N, longest + 1) and a count of the tokens not in the vocabulary
        (mapped to the unknown slot). No length cap: the rows are as long as the longest molecule."""
        width = max((len(t) for t in token_lists), default=0) + 1
        rows = torch.full((len(token_lists), width), SPECIALS.pad, dtype=torch.long)
        unknown: Counter = Counter()
        for i, tokens in enumerate(token_lists):
            ids = []
            for t in tokens:
                j = self.index.get(t)
                if j is None or j < len(SPECIAL_NAMES):
                    unknown[t] += 1
                    j = SPECIALS.unknown
                ids.append(j)
            rows[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            rows[i, len(ids)] = SPECIALS.end
        return rows, unknown

    def decode(self, rows: torch.Tensor) -> list[list[str]]:
        """Token strings of each row up to its end token (special symbols dropped)."""
        out = []
        for row in rows.tolist():
            tokens = []
            for j in row:
                if j in (SPECIALS.end, SPECIALS.pad):
                    break
                if j >= len(SPECIAL_NAMES):
                    tokens.append(self.tokens[j])
            out.append(tokens)
        return out
