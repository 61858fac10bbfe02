"""SMILES syntax during decoding: which tokens may come next, so every decoded string parses.

A sampled or greedy SMILES string fails to parse when a branch is never closed, a ring-bond label is
opened and never closed, a ring closure repeats a bond (closing on the atom that opened the label, on
the atom it is chained to, or twice between the same two atoms), or a bond, branch or ring label
stands where SMILES allows none (``C(=)C``, ``CC(``, ``=C``). ``SmilesSyntax`` tracks, for every row
being decoded, the open branches (and their root atoms), the open ring labels (and the atom that
opened each) and the kind of the last token, and allows only the tokens the SMILES grammar
(OpenSMILES, without the parts inside brackets, which are whole tokens) permits next; the end token
only when every branch and ring is closed. After ``close_after`` tokens nothing new may open, so a
long row winds down and ends. With ``valence=True`` no atom takes more bond orders than its element
allows (``bond_capacity``), counting chain, branch and ring bonds, and no step on the main chain
leaves an open ring with no atom to close it on. Aromatic atoms are not counted (their ring bonds are
implicit), so aromatic SMILES can still fail RDKit's kekulisation; in Kekule SMILES (no aromatic
atoms) the count is exact.

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
BOND_ORDER = {"-": 1, "=": 2, "#": 3, "$": 4, "/": 1, "\\": 1, ":": 1, "~": 1}
BRACKET = re.compile(r"^\[(\d*)([A-Z][a-z]?|se|as|te|[bcnops]|\*)(@[A-Z]{2}\d*|@@|@)?(H\d?)?([+-]+\d*)?(:\d+)?]$")
UNBOUNDED = 8  # aromatic, wildcard and unparsed atoms: their bonds are not counted against a valence


def bond_capacity(token: str) -> int:
    """How many bond orders an atom token can take to other atoms: the largest valence RDKit allows for
    the element (for an ion, for the element with the same electron count: N+ like C, O- like F) less
    its explicit hydrogens. Aromatic atoms are not limited here (their bonds to ring neighbours are
    implicit)."""
    from rdkit import Chem

    if token in ("*",) or token[:1].islower():
        return UNBOUNDED
    m = BRACKET.match(token) if token.startswith("[") else None
    symbol, hydrogens, charge = token, 0, 0
    if m:
        symbol = m.group(2)
        if symbol[:1].islower() or symbol == "*":
            return UNBOUNDED
        h = m.group(4)
        hydrogens = 0 if not h else (int(h[1:]) if len(h) > 1 else 1)
        c = m.group(5) or ""
        if c:
            digits = c.lstrip("+-")
            charge = (int(digits) if digits else len(c)) * (1 if c[0] == "+" else -1)
    elif token.startswith("["):
        return UNBOUNDED
    table = Chem.GetPeriodicTable()
    try:
        z = table.GetAtomicNumber(symbol) - charge
        valences = list(table.GetValenceList(z)) if z >= 1 else [0]
    except Exception:
        return UNBOUNDED
    if -1 in valences:
        return UNBOUNDED
    return max(0, max(valences) - hydrogens)


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


class TokenTables:
    """What the mask needs to know of each vocabulary token, computed once per vocabulary: its kind,
    its ring-label index (-1 if none), label -> token ids, bond capacity (atoms) and bond order (bonds)."""

    def __init__(self, tokens: Sequence[str], specials: SpecialTokens = DEFAULT_SPECIALS):
        special_ids = {specials.pad, specials.start, specials.end, specials.unknown}
        kinds = [OTHER if i in special_ids else token_kind(t) for i, t in enumerate(tokens)]
        labels = sorted({t for i, t in enumerate(tokens) if kinds[i] == RING})
        label_of = [labels.index(t) if kinds[i] == RING else -1 for i, t in enumerate(tokens)]
        self.kind_of = torch.tensor(kinds, dtype=torch.long)  # (V,)
        self.label_of = torch.tensor(label_of, dtype=torch.long)  # (V,)
        self.ring_token = torch.zeros(max(len(labels), 1), len(tokens), dtype=torch.bool)  # (R, V)
        for j, r in enumerate(label_of):
            if r >= 0:
                self.ring_token[r, j] = True
        self.cap_of = torch.tensor([bond_capacity(t) if k == ATOM else 0 for k, t in zip(kinds, tokens)])
        self.order_of = torch.tensor([BOND_ORDER.get(t, 1) if k == BOND else 0 for k, t in zip(kinds, tokens)])


class SmilesSyntax:
    """The syntax state of N SMILES rows being decoded, over a vocabulary's token strings (ids as the
    decoder's outputs; the special symbols keep their ids in ``specials``).

    ``allowed()`` -> (N, V) bool; ``advance(tokens)`` after each step (padding: a finished row, no
    change); ``reorder(index)`` follows beam search's reordering of rows.
    """

    def __init__(self, tokens: Sequence[str], n: int, *, device=None, specials: SpecialTokens = DEFAULT_SPECIALS,
                 close_after: int | None = None, valence: bool = False, tables: TokenTables | None = None):
        self.specials, self.close_after, self.valence = specials, close_after, valence
        tables = tables if tables is not None else TokenTables(tokens, specials)
        self.kind_of, self.label_of, self.ring_token, self.cap_of, self.order_of = (
            t.to(device) for t in (tables.kind_of, tables.label_of, tables.ring_token, tables.cap_of, tables.order_of))
        R = self.ring_token.shape[0]
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
        if valence:  # bond orders each atom has taken (column = atom number; column 0: no atom, unlimited)
            self.used = torch.zeros(n, 32, dtype=torch.long, device=device)
            self.cap = torch.zeros(n, 32, dtype=torch.long, device=device)
            self.cap[:, 0] = UNBOUNDED
            self.pend = torch.zeros(n, dtype=torch.long, device=device)  # order of the bond token just written
            self.ring_order = torch.zeros(n, R, dtype=torch.long, device=device)  # order given at a label's opening

    @classmethod
    def factory(cls, tokens: Sequence[str], specials: SpecialTokens = DEFAULT_SPECIALS, close_after: int | None = None,
                valence: bool = False):
        """A ``constraint`` for ``vaekit.sequence.generate`` / ``beam_search``: (n, device) -> state.
        After ``close_after`` tokens no new branch, ring label or fragment may open, so a row that runs
        long closes what it has open and ends. ``valence``: no atom takes more bond orders than its
        element allows (``bond_capacity``), counting chain, branch and ring bonds."""
        tables = TokenTables(tokens, specials)  # once per factory, not per batch of rows
        return lambda n, device: cls(tokens, n, device=device, specials=specials, close_after=close_after,
                                     valence=valence, tables=tables)

    def allowed(self) -> torch.Tensor:
        k = self.kind.unsqueeze(-1)  # (N, 1)
        kinds = self.kind_of.unsqueeze(0)  # (1, V)
        after_atom = (k == ATOM) | (k == RING) | (k == CLOSE)  # a current atom that can take a bond
        closed = (self.depth == 0).unsqueeze(-1) & ~self.ring_open.any(-1, keepdim=True)
        ok = (kinds == ATOM).expand(len(self.kind), -1).clone()
        ok |= (kinds == BOND) & (after_atom | (k == OPEN))
        winding = torch.zeros_like(k, dtype=torch.bool) if self.close_after is None else (
            self.length >= self.close_after).unsqueeze(-1)  # nothing new may open any more
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
        if self.valence:
            usable &= self._ring_valence_ok()
        ring_ok = usable.float() @ self.ring_token.float() > 0  # (N, V): some label of the token is usable
        ok |= (kinds == RING) & ring_place & ring_ok
        ok[:, self.specials.end] = (after_atom & closed).squeeze(-1)
        if self.valence:
            ok &= self._valence_ok()
        return ok

    # -- valence ------------------------------------------------------------------------------------------
    def _remaining(self, atom: torch.Tensor) -> torch.Tensor:
        a = atom.clamp(min=0).unsqueeze(-1)
        return (self.cap.gather(1, a) - self.used.gather(1, a)).squeeze(-1)

    def _valence_ok(self) -> torch.Tensor:
        """(N, V): atoms, bonds and branches that leave every atom within its valence (other tokens True)."""
        k, kinds = self.kind, self.kind_of.unsqueeze(0)
        rem = self._remaining(self.attach)  # (N,) what the atom a new bond would start from can still take
        bonded = k == BOND
        order = torch.where(bonded, self.pend, (self.attach >= 1).long())  # the bond a new atom arrives by
        start_ok = bonded | (self.attach < 1) | (rem >= 1)  # an implicit single bond needs room
        # while a ring label is open on the main chain (outside any branch), the chain must go on to the
        # atom that closes it: no step there may leave the chain's end (or a branch root that the chain
        # returns to) without a free bond. Inside a branch the chain can always close it and go back.
        rings = self.ring_open.any(-1)
        pending = (rings & (self.depth == 0)).long()
        atom_ok = (self.cap_of.unsqueeze(0) >= (order + pending).unsqueeze(-1)) & start_ok.unsqueeze(-1)
        # a bond opening a branch off the main chain leaves its root room to continue after the branch
        root_keep = (rings & (k == OPEN) & (self.depth == 1)).long()
        bond_ok = self.order_of.unsqueeze(0) <= (rem - root_keep).unsqueeze(-1)
        ok = torch.ones(len(k), len(self.kind_of), dtype=torch.bool, device=k.device)
        ok = torch.where(kinds == ATOM, atom_ok, ok)
        ok = torch.where(kinds == BOND, bond_ok, ok)
        return torch.where(kinds == OPEN, (rem >= 1 + pending).unsqueeze(-1), ok)

    def _ring_orders(self):
        """Per label (N, R): the order a ring bond written now would have, and whether the bond given
        just before it conflicts with the one given at the label's opening."""
        given = torch.where(self.kind == BOND, self.pend, torch.zeros_like(self.pend)).unsqueeze(-1)  # 0: none
        conflict = self.ring_open & (given > 0) & (self.ring_order > 0) & (self.ring_order != given)
        order = torch.where(self.ring_open & (self.ring_order > 0), self.ring_order, given.clamp(min=1))
        order = order.expand_as(self.ring_order)
        return given, order, conflict

    def _ring_valence_ok(self) -> torch.Tensor:
        given, order, conflict = self._ring_orders()
        rem = self._remaining(self.attach).unsqueeze(-1)
        # a label opened without an order and closed with a higher one needs more from its opener too
        extra = torch.where(self.ring_open & (self.ring_order == 0), given.clamp(min=1) - 1, torch.zeros_like(order))
        opener_rem = self.cap.gather(1, self.ring_atom.clamp(min=0)) - self.used.gather(1, self.ring_atom.clamp(min=0))
        # on the main chain, are labels still open after this one (then the chain must go on: keep one
        # free bond)? Inside a branch the chain can close the branch instead.
        n_open = self.ring_open.long().sum(-1, keepdim=True)
        others = (torch.where(self.ring_open, n_open - 1, n_open + 1) > 0) & (self.depth == 0).unsqueeze(-1)
        return ~conflict & (rem >= order + others.long()) & (opener_rem >= extra)

    def _advance_valence(self, tokens: torch.Tensor, live: torch.Tensor, kind: torch.Tensor) -> None:
        """Count the bonds a step adds (called before the syntax state moves on)."""
        if int(self.atoms.max()) + 2 >= self.used.shape[1]:
            self.used = torch.cat([self.used, torch.zeros_like(self.used)], 1)
            self.cap = torch.cat([self.cap, torch.zeros_like(self.cap)], 1)
        rows = torch.arange(len(tokens), device=tokens.device)
        att = self.attach.clamp(min=0)
        is_atom = live & (kind == ATOM)
        if bool(is_atom.any()):
            order = torch.where(self.kind == BOND, self.pend, (self.attach >= 1).long()) * is_atom.long()
            new = self.atoms + 1
            self.cap[rows[is_atom], new[is_atom]] = self.cap_of[tokens[is_atom]]
            self.used[rows[is_atom], new[is_atom]] = order[is_atom]
            self.used[rows, att] += order * (self.attach >= 1).long()
        label = self.label_of[tokens]
        ring = live & (label >= 0)
        if bool(ring.any()):
            given, order, _ = self._ring_orders()
            r = label.clamp(min=0).unsqueeze(-1)
            o = order.gather(1, r).squeeze(-1)
            g = given.squeeze(-1)
            was_open = self.ring_open.gather(1, r).squeeze(-1)
            opener = self.ring_atom.gather(1, r).squeeze(-1).clamp(min=0)
            start_order = self.ring_order.gather(1, r).squeeze(-1)
            self.used[rows, att] += o * ring.long()
            extra = (was_open & (start_order == 0)).long() * (g.clamp(min=1) - 1) * ring.long()
            self.used[rows, opener] += extra
            new_order = torch.where(was_open, torch.zeros_like(g), g)
            self.ring_order[rows[ring], label[ring]] = new_order[ring]
        bond = live & (kind == BOND)
        self.pend = torch.where(bond, self.order_of[tokens], self.pend)

    def advance(self, tokens: torch.Tensor) -> None:
        live = tokens != self.specials.pad
        self.length += live.long()
        kind = self.kind_of[tokens]
        kind = torch.where(tokens == self.specials.end, torch.full_like(kind, DOT), kind)
        if self.valence:
            self._advance_valence(tokens, live, kind)
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
                     "attach", "roots", *(("used", "cap", "pend", "ring_order") if self.valence else ())):
            setattr(self, name, getattr(self, name)[index])
