"""SMILES syntax during decoding: which tokens may come next, so every decoded string parses.

A sampled or greedy SMILES string fails to parse when a branch is never closed, a ring-bond label is
opened and never closed, a ring closure repeats a bond (closing on the atom that opened the label, on
the atom it is chained to, or twice between the same two atoms), or a bond, branch or ring label
stands where SMILES allows none (``C(=)C``, ``CC(``, ``=C``). ``SmilesSyntax`` tracks, for every row
being decoded, the open branches (and their root atoms), the open ring labels (and the atom that
opened each) and the kind of the last token, and allows only the tokens the SMILES grammar
(OpenSMILES, without the parts inside brackets, which are whole tokens) permits next; the end token
only when every branch and ring is closed. After ``close_after`` tokens nothing new may open, so a
long row winds down and ends. Chemistry (valence, aromaticity) is not checked: a string can still
parse and fail RDKit's sanitisation.

Decoding with the mask draws each token from p(x_t | x_<t, z) renormalised over the allowed tokens: a
different distribution from the model's p(x|z), whose ``log_prob`` (and every likelihood vaekit
reports) stays the unconstrained model's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from vaekit.sequence import SpecialTokens

ATOM, BOND, OPEN, CLOSE, RING, DOT, OTHER = range(7)
START = OTHER  # the kind before the first token: only an atom may come
DEFAULT_SPECIALS = SpecialTokens()
ORGANIC = {"B", "Br", "C", "Cl", "N", "O", "S", "P", "F", "I", "b", "c", "n", "o", "s", "p", "*"}
BONDS = {"-", "=", "#", "/", "\\", ":", "~", "$"}
RING_LABEL = re.compile(r"^(?:[0-9]|%[0-9]{2})$")


def token_kind(token: str) -> int:
    if token in ORGANIC or (token.startswith("[") and token.endswith("]") and len(token) > 2):
        return ATOM
    if token in BONDS:
        return BOND
    if token == "(":
        return OPEN
    if token == ")":
        return CLOSE
    if RING_LABEL.match(token):
        return RING
    if token == ".":
        return DOT
    return OTHER


class SmilesSyntax:
    """The syntax state of N SMILES rows being decoded, over a vocabulary's token strings (ids as the
    decoder's outputs; the special symbols keep their ids in ``specials``).

    ``allowed()`` -> (N, V) bool; ``advance(tokens)`` after each step (padding: a finished row, no
    change); ``reorder(index)`` follows beam search's reordering of rows.
    """

    def __init__(self, tokens: Sequence[str], n: int, *, device=None, specials: SpecialTokens = DEFAULT_SPECIALS,
                 close_after: int | None = None):
        self.specials, self.close_after = specials, close_after
        special_ids = {specials.pad, specials.start, specials.end, specials.unknown}
        kinds = [OTHER if i in special_ids else token_kind(t) for i, t in enumerate(tokens)]
        labels = sorted({t for i, t in enumerate(tokens) if kinds[i] == RING})
        self.kind_of = torch.tensor(kinds, dtype=torch.long, device=device)  # (V,)
        label_of = [labels.index(t) if kinds[i] == RING else -1 for i, t in enumerate(tokens)]
        self.label_of = torch.tensor(label_of, dtype=torch.long, device=device)  # (V,) ring label index or -1
        V, R = len(tokens), max(len(labels), 1)
        self.ring_token = torch.zeros(R, V, dtype=torch.bool, device=device)  # label -> its token id(s)
        for j, r in enumerate(label_of):
            if r >= 0:
                self.ring_token[r, j] = True
        self.kind = torch.full((n,), START, dtype=torch.long, device=device)
        self.length = torch.zeros(n, dtype=torch.long, device=device)
        self.bond_ringable = torch.zeros(n, dtype=torch.bool, device=device)  # last bond followed an atom / ring
        self.depth = torch.zeros(n, dtype=torch.long, device=device)
        self.atoms = torch.zeros(n, dtype=torch.long, device=device)
        self.ring_open = torch.zeros(n, R, dtype=torch.bool, device=device)
        self.ring_atom = torch.full((n, R), -1, dtype=torch.long, device=device)  # the atom that opened a label
        # bonds a ring closure must not repeat: to the atom this one is bonded to in the chain, and to the
        # openers of labels already closed on this atom
        self.parent = torch.full((n,), -1, dtype=torch.long, device=device)
        self.closed_openers = torch.full((n, R), -1, dtype=torch.long, device=device)
        self.attach = torch.full((n,), -1, dtype=torch.long, device=device)  # the atom a new atom bonds to
        self.roots = torch.full((n, 1), -1, dtype=torch.long, device=device)  # branch roots, a stack by depth

    @classmethod
    def factory(cls, tokens: Sequence[str], specials: SpecialTokens = DEFAULT_SPECIALS, close_after: int | None = None):
        """A ``constraint`` for ``vaekit.sequence.generate`` / ``beam_search``: (n, device) -> state.
        After ``close_after`` tokens no new branch, ring label or fragment may open, so a row that runs
        long closes what it has open and ends."""
        return lambda n, device: cls(tokens, n, device=device, specials=specials, close_after=close_after)

    def allowed(self) -> torch.Tensor:
        k = self.kind.unsqueeze(-1)  # (N, 1)
        kinds = self.kind_of.unsqueeze(0)  # (1, V)
        after_atom = (k == ATOM) | (k == RING) | (k == CLOSE)  # a current atom that can take a bond
        closed = (self.depth == 0).unsqueeze(-1) & ~self.ring_open.any(-1, keepdim=True)
        ok = (kinds == ATOM).expand(len(self.kind), -1).clone()
        ok |= (kinds == BOND) & (after_atom | (k == OPEN))
        winding = (self.length >= (self.close_after if self.close_after is not None else self.length + 1)).unsqueeze(-1)
        ok |= (kinds == OPEN) & after_atom & ~winding
        ok |= (kinds == CLOSE) & after_atom & (self.depth > 0).unsqueeze(-1)
        ok |= (kinds == DOT) & after_atom & closed & ~winding
        # ring labels: right after an atom, another label, or a bond that follows one; never closing on
        # the atom that opened the label
        ring_place = (k == ATOM) | (k == RING) | ((k == BOND) & self.bond_ringable.unsqueeze(-1))
        opener = self.ring_atom
        self_close = self.ring_open & ((opener == self.atoms.unsqueeze(-1)) | (opener == self.parent.unsqueeze(-1))
                                       | (opener.unsqueeze(-1) == self.closed_openers.unsqueeze(-2)).any(-1))
        usable = ~self_close & (self.ring_open | ~winding)  # when winding down: only labels that close
        ring_ok = usable.float() @ self.ring_token.float() > 0  # (N, V): some label of the token is usable
        ok |= (kinds == RING) & ring_place & ring_ok
        ok[:, self.specials.end] = (after_atom & closed).squeeze(-1)
        return ok

    def advance(self, tokens: torch.Tensor) -> None:
        live = tokens != self.specials.pad
        self.length += live.long()
        kind = self.kind_of[tokens]
        kind = torch.where(tokens == self.specials.end, torch.full_like(kind, DOT), kind)
        is_atom = live & (kind == ATOM)
        self.atoms += is_atom.long()  # atoms are numbered from 1
        self.parent = torch.where(is_atom, self.attach, self.parent)
        self.attach = torch.where(is_atom, self.atoms, self.attach)
        self.closed_openers = self.closed_openers.masked_fill(is_atom.unsqueeze(-1), -1)
        opens, closes = live & (kind == OPEN), live & (kind == CLOSE)
        if bool(opens.any()):  # push the branch root at the new depth
            if int(self.depth.max()) + 1 >= self.roots.shape[1]:
                self.roots = torch.cat([self.roots, torch.full_like(self.roots, -1)], 1)
            rows = opens.nonzero().squeeze(-1)
            self.roots[rows, self.depth[rows]] = self.attach[rows]
        if bool(closes.any()):  # back to the root of the branch just closed
            rows = closes.nonzero().squeeze(-1)
            self.attach[rows] = self.roots[rows, self.depth[rows] - 1]
        self.depth += opens.long() - closes.long()
        self.attach = torch.where(live & (kind == DOT), torch.full_like(self.attach, -1), self.attach)
        label = self.label_of[tokens]
        ring = live & (label >= 0)
        if bool(ring.any()):
            rows = ring.nonzero().squeeze(-1)
            r = label[rows]
            was_open = self.ring_open[rows, r]
            self.closed_openers[rows, r] = torch.where(was_open, self.ring_atom[rows, r], self.closed_openers[rows, r])
            self.ring_open[rows, r] = ~was_open
            self.ring_atom[rows, r] = torch.where(was_open, torch.full_like(r, -1), self.atoms[rows])
        is_bond = live & (kind == BOND)
        self.bond_ringable = torch.where(is_bond, (self.kind == ATOM) | (self.kind == RING), self.bond_ringable)
        self.kind = torch.where(live, kind, self.kind)

    def reorder(self, index: torch.Tensor) -> None:
        for name in ("kind", "length", "bond_ringable", "depth", "atoms", "ring_open", "ring_atom", "parent", "closed_openers",
                     "attach", "roots"):
            setattr(self, name, getattr(self, name)[index])
