"""Mixed-type table rows: one likelihood over numeric and categorical columns, missing cells masked.

The model array of a row holds, column by column, one value for a numeric column (standardised) and a
one-hot block for a categorical column (binary and constant columns are categorical blocks too).
The decoder gives one output per model-array value: the mean of a numeric column and the logits of a
categorical block. Then

    log p(x|z) = sum_numeric log N(x_c | loc_c, s_c) + sum_categorical log softmax(logits_c)[x_c],

with a learned per-column scale s_c >= ``min_scale`` (standardised units), and every missing cell
(NaN in the model array; a whole block for a categorical column) left out of the sum, not imputed
(Nazabal et al. 2020, HI-VAE; Xu et al. 2018, Donut's "modified ELBO").

Opt-in per column (``{"kind": "numeric", "components": K}``): a mixture of K logistic distributions
whose weights, locations and scales the decoder predicts, for multi-modal and skewed numbers, plus
optional ``atoms`` (point masses at given values, e.g. the 0 of a mostly-zero column, with weights the
decoder predicts: a spike-and-slab mixture), marginalised exactly:
log p(x_c|z) = log (sum_k w_k f_k(x_c) / Z_k + sum_a w_a [x_c = a]). ``bin_width`` w > 0 makes the
column discrete (integers): f_k is the mass of the bin [x - w/2, x + w/2], so the term is a
log-probability, not a density (the discretised logistic mixture of Salimans et al. 2017, PixelCNN++;
logistic rather than Gaussian components because their CDF is a sigmoid: cheap, stable in the tails,
exactly invertible for sampling). ``low``/``high`` bound the support: each component is truncated to
it (Z_k its mass inside), so samples stay in range and the density is the sampler's. For a continuous
column with atoms the term at an atom is a log-probability (a mixed measure), elsewhere a log-density.
Decoder outputs: one per model-array value, then the mixture parameters; when they outnumber the
model-array width D, ``n_params`` = ceil(outputs / D) and the decoder's last unused outputs are ignored.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Normal, constraints

from vaekit.likelihoods.base import MIN_SCALE, Likelihood, positive


class Layout:
    """Index tensors for a column list ``[{"kind": "numeric"} | {"kind": "categorical", "size": K}]``."""

    def __init__(self, columns: list[dict]):
        if not columns:
            raise ValueError("A table likelihood needs at least one column.")
        num_at, num_col, cat_start, cat_size, cat_col, pos = [], [], [], [], [], 0
        mix = []  # (position, column, components, bin width, low, high, atoms) of mixture columns
        for i, c in enumerate(columns):
            if c["kind"] == "numeric" and int(c.get("components") or 0) > 0:
                mix.append((pos, i, int(c["components"]), float(c.get("bin_width") or 0.0),
                            float(c.get("low", -math.inf)), float(c.get("high", math.inf)),
                            [float(a) for a in c.get("atoms", ())]))
                pos += 1
            elif c["kind"] == "numeric":
                num_at.append(pos)
                num_col.append(i)
                pos += 1
            elif c["kind"] == "categorical":
                size = int(c["size"])
                if size < 1:
                    raise ValueError(f"Categorical column {c.get('name', i)!r} needs at least one category.")
                cat_start.append(pos)
                cat_size.append(size)
                cat_col.append(i)
                pos += size
            else:
                raise ValueError(f"Unknown column kind {c['kind']!r}; use 'numeric' or 'categorical'.")
        self.width, self.n_features = pos, len(columns)
        self.num_at, self.num_col = torch.tensor(num_at, dtype=torch.long), torch.tensor(num_col, dtype=torch.long)
        self.cat_col = torch.tensor(cat_col, dtype=torch.long)
        width = max(cat_size, default=0)
        # (n_cat, width) model-array index of each block's slots; padding slots point at slot 0
        self.cat_index = torch.tensor([[s + j if j < n else s for j in range(width)]
                                       for s, n in zip(cat_start, cat_size)], dtype=torch.long).reshape(len(cat_size), width)
        self.cat_pad = torch.tensor([[j >= n for j in range(width)] for n in cat_size],
                                    dtype=torch.bool).reshape(len(cat_size), width)
        self.cat_first = torch.tensor(cat_start, dtype=torch.long)
        # the same slots unpadded: model-array position and block of each
        self.cat_slot = torch.tensor([s + j for s, n in zip(cat_start, cat_size) for j in range(n)], dtype=torch.long)
        self.cat_block = torch.tensor([b for b, n in enumerate(cat_size) for _ in range(n)], dtype=torch.long)
        # slots never drawn when generating: padding, and a block's last slot when it stands for
        # "a category not seen at fit time" (or "differs from the fit-time constant")
        unseen = [bool(columns[i].get("unseen_slot")) and n > 1 for i, n in zip(cat_col, cat_size)]
        self.gen_pad = self.cat_pad.clone()
        for b, (n, u) in enumerate(zip(cat_size, unseen)):
            if u:
                self.gen_pad[b, n - 1] = True
        self.n_mix = len(mix)
        self.components = max((m[2] for m in mix), default=0)
        self.mix_at = torch.tensor([m[0] for m in mix], dtype=torch.long)
        self.mix_col = torch.tensor([m[1] for m in mix], dtype=torch.long)
        self.mix_pad = torch.tensor([[k >= m[2] for k in range(self.components)] for m in mix],
                                    dtype=torch.bool).reshape(len(mix), self.components)
        self.mix_bin = torch.tensor([m[3] for m in mix], dtype=torch.float32)
        self.mix_bounded = torch.tensor([math.isfinite(m[4]) and math.isfinite(m[5]) for m in mix], dtype=torch.bool)
        # which kinds of mixture term the table needs ("some" / "all" of its mixture columns), fixed at build time
        discrete, bounded = [m[3] > 0 for m in mix], [bool(b) for b in self.mix_bounded]
        self.some_discrete, self.all_discrete = any(discrete), all(discrete)
        self.some_bounded, self.all_bounded = any(bounded), all(bounded)
        self.mix_low = torch.tensor([m[4] if math.isfinite(m[4]) else -1.0 for m in mix], dtype=torch.float32)
        self.mix_high = torch.tensor([m[5] if math.isfinite(m[5]) else 1.0 for m in mix], dtype=torch.float32)
        for m in mix:
            if math.isfinite(m[4]) != math.isfinite(m[5]) or m[4] >= m[5]:
                raise ValueError(f"Column {columns[m[1]].get('name', m[1])!r} needs both low < high or neither.")
        self.atoms = max((len(m[6]) for m in mix), default=0)
        A = self.atoms
        self.atom_at = torch.tensor([m[6] + [0.0] * (A - len(m[6])) for m in mix], dtype=torch.float32).reshape(len(mix), A)
        self.atom_pad = torch.tensor([[a >= len(m[6]) for a in range(A)] for m in mix], dtype=torch.bool).reshape(len(mix), A)
        # x equals an atom when within a quarter bin (discrete) or float32 rounding (continuous)
        self.atom_tol = torch.tensor([[max(0.25 * m[3], 1e-6 * (1 + abs(a))) for a in m[6] + [0.0] * (A - len(m[6]))]
                                      for m in mix], dtype=torch.float32).reshape(len(mix), A)
        # decoder outputs: one per model-array value, then per mixture column K weights, K locations,
        # K raw scales and A atom weights
        self.mix_size = 3 * self.components + A
        self.n_outputs = self.width + self.mix_size * self.n_mix


INDEX = ("num_at", "num_col", "cat_col", "cat_index", "cat_pad", "cat_first", "cat_slot", "cat_block", "gen_pad",
         "mix_at", "mix_col", "mix_pad", "mix_bin", "mix_bounded", "mix_low", "mix_high", "atom_at", "atom_pad",
         "atom_tol")


# Below this, exp(t) is under float32's resolution of any sum it joins (and log1p(exp(t)) = exp(t) to it).
# Arguments are clamped there because torch's CPU exp and log1p take a slow path, tens of times slower,
# for inputs far out in the tails, which the mixture terms of a fitted model are full of.
TAIL = -15.0


def softplus(t: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(t)), as F.softplus but with t raised to TAIL first: off by less than
    exp(TAIL) = 3.1e-7 nats, without the slow path for very negative t."""
    return F.softplus(t.clamp(min=TAIL))


def logsumexp(t: torch.Tensor) -> torch.Tensor:
    """log sum_k exp(t_k) over the last dimension (-inf where every t_k is -inf). Terms more than 80
    nats below the largest add less than exp(-80) to a sum >= 1 and are clamped there."""
    top = t.detach().amax(-1, keepdim=True).clamp(min=-1e30)  # finite, so t - top is never -inf - (-inf)
    out = torch.log(torch.exp((t - top).clamp(min=-80.0)).sum(-1)) + top.squeeze(-1)
    return torch.where(top.squeeze(-1) > -1e30, out, -math.inf)


def log_logistic_mass(a: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(a + width) - sigmoid(a)) for width > 0, stable in both tails and for tiny widths:
    = log(1 - exp(-width)) + log sigmoid(b) + log(1 - sigmoid(a)), with b = a + width."""
    return torch.log(-torch.expm1(-width)) - softplus(-(a + width)) - softplus(a)


def truncated_logistic(loc: torch.Tensor, scale: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """x ~ Logistic(loc, scale) restricted to [low, high], by inversion of the CDF (float64; flipped to
    the left tail, where the CDF keeps its precision)."""
    loc, scale = loc.double(), scale.double()
    a, b = (low.double() - loc) / scale, (high.double() - loc) / scale
    flip = a > 0
    lo, hi = torch.where(flip, -b, a), torch.where(flip, -a, b)
    p_lo, p_hi = torch.sigmoid(lo), torch.sigmoid(hi)
    u = (p_lo + (p_hi - p_lo) * torch.rand_like(p_lo)).clamp(min=1e-300, max=1 - 1e-16)
    t = torch.log(u) - torch.log1p(-u)  # logit
    t = torch.where(flip, -t, t)
    t = torch.minimum(torch.maximum(t, a), b)
    return (loc + scale * t).float()


class TableDistribution(Distribution):
    """p(x|z) over model-array rows; batch (*batch,), event (D,). ``feature_log_prob`` gives the
    per-column terms (nats, 0 where missing) whose sum is ``log_prob``."""

    arg_constraints: dict = {}
    support = constraints.real

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, layout: Layout, mix: torch.Tensor | None = None,
                 min_scale: float = 0.0):
        # loc (*batch, D); scale (*batch, n_numeric); mix (*batch, n_mix, 3K + A) raw mixture parameters
        self.loc, self.scale, self.layout, self.mix, self.min_scale = loc, scale, layout, mix, min_scale
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=False)

    def _index(self, t: torch.Tensor) -> Layout:
        lay = self.layout
        if lay.num_at.device != t.device:
            for name in INDEX:
                setattr(lay, name, getattr(lay, name).to(t.device))
        return lay

    def mixture(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log w, loc, scale) of the mixture columns: log w (*batch, n_mix, K + A) the weights of the K
        logistic components then the A atoms; loc, scale (*batch, n_mix, K) in standardised units (a
        logistic's standard deviation is scale * pi / sqrt(3))."""
        lay = self._index(self.loc)
        K = lay.components
        # contiguous copies: torch's element-wise kernels (softplus above all) run an order of magnitude
        # slower on the strided views that split returns
        logits, loc, raw, atom_logits = (t.contiguous() for t in self.mix.split([K, K, K, lay.atoms], -1))
        scale = softplus(raw) + self.scale_floor()
        logits = torch.cat([logits.masked_fill(lay.mix_pad, -math.inf), atom_logits.masked_fill(lay.atom_pad, -math.inf)], -1)
        return F.log_softmax(logits, -1), loc, scale

    def scale_floor(self) -> torch.Tensor:
        """(n_mix, 1) least component scale: ``min_scale`` (at least 1e-3) for continuous columns, where
        it keeps the density bounded; for discrete ones, whose terms are masses (<= 0 nats) whatever the
        scale, a hundredth of a bin when that is smaller."""
        lay = self.layout
        dense = max(MIN_SCALE, self.min_scale)
        return torch.where(lay.mix_bin > 0, (0.01 * lay.mix_bin).clamp(max=dense),
                           torch.full_like(lay.mix_bin, dense)).unsqueeze(-1)

    def _log_range_mass(self, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """log Z_k: each component's mass inside its column's [low, high] (0 for unbounded columns)."""
        lay = self.layout
        span = (lay.mix_high - lay.mix_low).unsqueeze(-1)  # (n_mix, 1); 2 for unbounded (unused)
        if not lay.some_bounded:
            return torch.zeros_like(loc)
        z = log_logistic_mass((lay.mix_low.unsqueeze(-1) - loc) / scale, span / scale)
        return z if lay.all_bounded else torch.where(lay.mix_bounded.unsqueeze(-1), z, torch.zeros_like(z))

    def mixture_log_prob(self, v: torch.Tensor) -> torch.Tensor:
        """log p(v_c|z) of the mixture columns' values v (*, n_mix) in nats: a log-mass for discrete
        columns and at atoms, a log-density elsewhere."""
        lay = self._index(v)
        log_w, loc, scale = self.mixture()
        v = v.unsqueeze(-1)  # (*, n_mix, 1)
        bin_width = lay.mix_bin.unsqueeze(-1)
        discrete = bin_width > 0
        t = (v - loc) / scale
        # each kind's term only where the table has columns of that kind (both, then picked per column)
        if lay.some_discrete:
            term = mass = log_logistic_mass(t - 0.5 * bin_width / scale,
                                            torch.where(discrete, bin_width, torch.ones_like(bin_width)) / scale)
        if not lay.all_discrete:
            term = density = -t - torch.log(scale) - 2 * softplus(-t)  # logistic log-density
            if lay.some_discrete:
                term = torch.where(discrete, mass, density)
        term = term - self._log_range_mass(loc, scale)  # (*, n_mix, K)
        at_atom = ((v - lay.atom_at).abs() <= lay.atom_tol) & ~lay.atom_pad  # (*, n_mix, A)
        atom_term = torch.zeros_like(at_atom, dtype=term.dtype).masked_fill(~at_atom, -math.inf)
        # at an atom of a continuous column the components' density has no mass: the term is log w_a
        on_atom = at_atom.any(-1, keepdim=True) & ~discrete
        term = term.masked_fill(on_atom, -math.inf)
        return logsumexp(log_w + torch.cat([term, atom_term.expand(*term.shape[:-1], -1)], -1))

    def mixture_sample(self, sample_shape: torch.Size) -> torch.Tensor:
        """(*sample_shape, *batch, n_mix) draws: a component or atom by its weight, then the atom's value
        or the component's truncated logistic."""
        lay = self._index(self.loc)
        log_w, loc, scale = self.mixture()
        shape = torch.Size(sample_shape) + log_w.shape[:-1]
        pick = torch.distributions.Categorical(logits=log_w.expand(*shape, -1)).sample().unsqueeze(-1)
        K = lay.components
        k = pick.clamp(max=K - 1)
        loc, scale = loc.expand(*shape, K).gather(-1, k).squeeze(-1), scale.expand(*shape, K).gather(-1, k).squeeze(-1)
        low = torch.where(lay.mix_bounded, lay.mix_low, torch.full_like(lay.mix_low, -math.inf))
        high = torch.where(lay.mix_bounded, lay.mix_high, torch.full_like(lay.mix_high, math.inf))
        x = truncated_logistic(loc, scale, low.expand_as(loc), high.expand_as(loc))
        if lay.atoms:
            a = (pick - K).clamp(min=0)
            atom = lay.atom_at.expand(*shape, lay.atoms).gather(-1, a).squeeze(-1)
            x = torch.where(pick.squeeze(-1) >= K, atom, x)
        return x

    def block_logits(self) -> torch.Tensor:
        """(*batch, n_cat, width) log-probabilities of each categorical block (padding at -inf)."""
        lay = self._index(self.loc)
        logits = self.loc[..., lay.cat_index].masked_fill(lay.cat_pad, -math.inf)
        return F.log_softmax(logits, -1)

    def block_log_prob(self, xs: torch.Tensor) -> torch.Tensor:
        """sum_j x_j log softmax(logits)_j per categorical block, (*, n_cat), from the blocks' slots
        ``xs`` (*, S) side by side (a one-hot block picks its category's log-probability). The
        normaliser is a per-block log-sum-exp over the S real slots rather than padded blocks (several
        times faster than ``block_logits``)."""
        lay = self.layout
        logits = self.loc.index_select(-1, lay.cat_slot)  # (*batch, S)
        n_cat = len(lay.cat_first)
        top = logits.new_full((*logits.shape[:-1], n_cat), -math.inf).scatter_reduce(
            -1, lay.cat_block.expand(*logits.shape), logits.detach(), "amax")  # (*batch, n_cat)
        shifted = logits - top.index_select(-1, lay.cat_block)  # each block's largest logit at 0
        xs, shifted = torch.broadcast_tensors(xs, shifted)

        def per_block(v):  # (*, S) -> (*, n_cat): the sum over each block's slots
            return v.new_zeros((*v.shape[:-1], n_cat)).index_add(-1, lay.cat_block, v)

        log_z = torch.log(per_block(torch.exp(shifted.clamp(min=-80.0))))  # the largest term adds 1
        return per_block(xs * shifted) - log_z * per_block(xs)

    def feature_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x_c|z) per column, (*batch, F) in nats; 0 where x_c is missing."""
        lay = self._index(x)
        x = x.to(self.loc.dtype)
        shape = torch.broadcast_shapes(self.batch_shape, x.shape[:-1])
        out = torch.zeros(*shape, lay.n_features, dtype=self.loc.dtype, device=self.loc.device)
        if len(lay.num_at):
            xn = x[..., lay.num_at]
            seen = torch.isfinite(xn)
            lp = Normal(self.loc[..., lay.num_at], self.scale, validate_args=False).log_prob(torch.nan_to_num(xn))
            out[..., lay.num_col] = torch.where(seen, lp, torch.zeros_like(lp)).expand(*shape, -1)
        if len(lay.cat_first):
            seen = torch.isfinite(x[..., lay.cat_first])
            lp = self.block_log_prob(torch.nan_to_num(x.index_select(-1, lay.cat_slot)))
            out[..., lay.cat_col] = torch.where(seen, lp, torch.zeros_like(lp)).expand(*shape, -1)
        if lay.n_mix:
            xm = x[..., lay.mix_at]
            lp = self.mixture_log_prob(torch.nan_to_num(xm))
            out[..., lay.mix_col] = torch.where(torch.isfinite(xm), lp, torch.zeros_like(lp)).expand(*shape, -1)
        return out

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_log_prob(x).sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        """Model-array rows: numeric means and categorical probabilities."""
        lay = self._index(self.loc)
        out = self.loc.clone()
        if len(lay.cat_first):
            probs = self.block_logits().exp()
            out[..., lay.cat_index[~lay.cat_pad]] = probs[..., ~lay.cat_pad]
        if lay.n_mix:  # the untruncated mixture mean: sum_k w_k loc_k + sum_a w_a a
            log_w, loc, _ = self.mixture()
            w = log_w.exp()
            out[..., lay.mix_at] = (w[..., : lay.components] * loc).sum(-1) + (w[..., lay.components:] * lay.atom_at).sum(-1)
        return out

    def sample(self, sample_shape=()) -> torch.Tensor:
        """Model-array rows: numeric values x ~ N(loc, s), one-hot blocks of sampled categories (never
        the slot for unseen categories: new data comes from the categories the model was fitted on)."""
        lay = self._index(self.loc)
        with torch.no_grad():
            shape = torch.Size(sample_shape) + self.loc.shape
            out = self.loc.expand(shape).clone()
            if len(lay.num_at):
                out[..., lay.num_at] = Normal(self.loc[..., lay.num_at], self.scale).sample(sample_shape)
            if len(lay.cat_first):
                logits = self.block_logits().masked_fill(lay.gen_pad, -math.inf)
                logits = logits.expand(*sample_shape, *self.loc.shape[:-1], *lay.cat_index.shape)
                pick = torch.distributions.Categorical(logits=logits).sample()  # (*, n_cat)
                onehot = F.one_hot(pick, lay.cat_index.shape[1]).to(out.dtype)
                out[..., lay.cat_index[~lay.cat_pad]] = onehot[..., ~lay.cat_pad]
            if lay.n_mix:
                out[..., lay.mix_at] = self.mixture_sample(torch.Size(sample_shape))
            return out


class TableLikelihood(Likelihood):
    """Mixed-type rows; ``columns`` lists each column's kind in model-array order (``{"kind": "numeric"}``
    or ``{"kind": "categorical", "size": K}``, other keys ignored; a numeric column may add
    ``components``, ``bin_width``, ``low``, ``high``, ``atoms`` for the mixture above). The decoder gives one output
    per model-array value (and the mixture parameters after them); plain numeric scales are learned per
    column and floored at ``min_scale``, as are continuous mixture components (discrete ones: see
    ``TableDistribution.scale_floor``)."""

    name = "table"
    masks_missing = True

    def __init__(self, *, columns: list[dict], min_scale: float = 0.0, event_shape: tuple[int, ...] = ()):
        super().__init__()
        self.columns = [dict(c) for c in columns]
        self.layout = Layout(self.columns)
        if event_shape and tuple(event_shape) != (self.layout.width,):
            raise ValueError(f"The table columns span {self.layout.width} model-array values but the input "
                             f"shape is {tuple(event_shape)}.")
        self.min_scale = float(min_scale)
        self.raw_scale = nn.Parameter(torch.full((len(self.layout.num_at),), math.log(math.e - 1)))
        self.n_outputs = self.layout.n_outputs
        self.n_params = -(-self.n_outputs // self.layout.width)  # 1 unless mixture columns need more outputs

    def forward(self, h: torch.Tensor, event_dims: int) -> Distribution:
        lay = self.layout
        mix = None
        if self.n_params == 1:
            loc = h.float().squeeze(-event_dims - 1)  # (*batch, D)
        else:
            flat = h.float().flatten(-2)  # (*batch, n_params * D): the decoder's outputs in order
            # one split, not two slices, so the backward pass writes one gradient rather than two zero-filled ones
            loc, mix, _ = flat.split([lay.width, self.n_outputs - lay.width, flat.shape[-1] - self.n_outputs], -1)
            mix = mix.unflatten(-1, (lay.n_mix, lay.mix_size))
        scale = positive(self.raw_scale, MIN_SCALE)
        if self.min_scale > 0:
            scale = scale.clamp(min=self.min_scale)
        return TableDistribution(loc, scale, lay, mix, self.min_scale)

    def mean(self, px: TableDistribution) -> torch.Tensor:
        return px.mean
