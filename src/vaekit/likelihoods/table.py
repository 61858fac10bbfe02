"""Mixed-type table rows: one likelihood over numeric and categorical columns, missing cells masked.

The model array of a row holds, column by column, one value for a numeric column (standardised) and a
one-hot block for a categorical column (binary and constant columns are categorical blocks too).
The decoder gives one output per model-array value: the mean of a numeric column and the logits of a
categorical block. Then

    log p(x|z) = sum_numeric log N(x_c | loc_c, s_c) + sum_categorical log softmax(logits_c)[x_c],

with a learned per-column scale s_c >= ``min_scale`` (standardised units), and every missing cell
(NaN in the model array; a whole block for a categorical column) left out of the sum, not imputed
(Nazabal et al. 2020, HI-VAE; Xu et al. 2018, Donut's "modified ELBO").
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
        for i, c in enumerate(columns):
            if c["kind"] == "numeric":
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
        # slots never drawn when generating: padding, and a block's last slot when it stands for
        # "a category not seen at fit time" (or "differs from the fit-time constant")
        unseen = [bool(columns[i].get("unseen_slot")) and n > 1 for i, n in zip(cat_col, cat_size)]
        self.gen_pad = self.cat_pad.clone()
        for b, (n, u) in enumerate(zip(cat_size, unseen)):
            if u:
                self.gen_pad[b, n - 1] = True


class TableDistribution(Distribution):
    """p(x|z) over model-array rows; batch (*batch,), event (D,). ``feature_log_prob`` gives the
    per-column terms (nats, 0 where missing) whose sum is ``log_prob``."""

    arg_constraints: dict = {}
    support = constraints.real

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, layout: Layout):
        self.loc, self.scale, self.layout = loc, scale, layout  # loc (*batch, D); scale (*batch, n_numeric)
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=False)

    def _index(self, t: torch.Tensor) -> Layout:
        lay = self.layout
        if lay.num_at.device != t.device:
            for name in ("num_at", "num_col", "cat_col", "cat_index", "cat_pad", "cat_first", "gen_pad"):
                setattr(lay, name, getattr(lay, name).to(t.device))
        return lay

    def block_logits(self) -> torch.Tensor:
        """(*batch, n_cat, width) log-probabilities of each categorical block (padding at -inf)."""
        lay = self._index(self.loc)
        logits = self.loc[..., lay.cat_index].masked_fill(lay.cat_pad, -math.inf)
        return F.log_softmax(logits, -1)

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
            xb = torch.nan_to_num(x[..., lay.cat_index].masked_fill(lay.cat_pad, 0.0))  # (*, n_cat, width)
            seen = torch.isfinite(x[..., lay.cat_first])
            lp = (self.block_logits() * xb).nan_to_num(0.0, neginf=0.0).sum(-1)  # one-hot picks one slot
            out[..., lay.cat_col] = torch.where(seen, lp, torch.zeros_like(lp)).expand(*shape, -1)
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
        return out

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
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
            return out


class TableLikelihood(Likelihood):
    """Mixed-type rows; ``columns`` lists each column's kind in model-array order (``{"kind": "numeric"}``
    or ``{"kind": "categorical", "size": K}``, other keys ignored). The decoder gives one output per
    model-array value; numeric scales are learned per column and floored at ``min_scale``."""

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

    def forward(self, h: torch.Tensor, event_dims: int) -> Distribution:
        loc = h.float().squeeze(-event_dims - 1)  # (*batch, D)
        scale = positive(self.raw_scale, MIN_SCALE)
        if self.min_scale > 0:
            scale = scale.clamp(min=self.min_scale)
        return TableDistribution(loc, scale, self.layout)

    def mean(self, px: TableDistribution) -> torch.Tensor:
        return px.mean
