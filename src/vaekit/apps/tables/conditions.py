"""Conditional sampling without rejection loops: ``conditions={"income": ">50K"}``.

A condition is a partial row x_c. Every row of the sample takes z from p(z | x_c), drawn by sampling
importance resampling (Rubin 1988): ``pool`` candidates z_i ~ p(z), one kept with probability
proportional to p(x_c | z_i) (the table likelihood of the conditioned cells alone, the rest masked as
missing); then x ~ p(x | z) and the conditioned cells are set to x_c. The cost is fixed (``pool``
decoder passes per row) whatever the condition's frequency, so it cannot hang; the draw tends to
p(z | x_c) as ``pool`` grows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from vaekit.data import tabular


def condition_row(conditions: dict, spec: dict, id_columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(1, width) model-array row holding the conditioned cells (NaN elsewhere) and a (width,) mask of
    the values a sample takes from it. A ValueError names a column or value that cannot be asked for."""
    if not isinstance(conditions, dict) or not conditions:
        raise ValueError("conditions must be a non-empty dict of column -> value, e.g. {'income': '>50K'}.")
    columns = {c["name"]: c for c in spec["columns"] if c["kind"] != "missing"}
    order = spec["order"]
    row = {c: [np.nan] for c in order}
    for name, value in conditions.items():
        name = str(name)
        if name in id_columns:
            raise ValueError(f"Column {name!r} is an ID column (filled with fresh IDs); condition on a modelled column.")
        if name not in columns:
            raise ValueError(f"Cannot condition on {name!r}: it is not a column of the training table; its columns "
                             f"are {order[:10]}.")
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            raise ValueError(f"The condition on {name!r} is missing (None/NaN); ask for an observed value.")
        row[name] = [check_value(columns[name], value)]
    x = tabular.encode_table(pd.DataFrame(row), spec, name="conditions")
    slices = tabular.column_slices(spec)
    keep = np.zeros(x.shape[1], dtype=bool)
    for name in conditions:
        keep[slices[str(name)]] = True
        if f"{name} (missing)" in slices:  # an asked value is an observed value
            keep[slices[f"{name} (missing)"]] = True
    return np.where(keep, x, np.nan).astype(np.float32), keep


def check_value(c: dict, value):
    """The value as the encoder expects it; a ValueError when the model never saw it."""
    name = c["name"]
    if c["kind"] == "categorical":
        if str(value) not in c["categories"]:
            shown = c["categories"][:8]
            raise ValueError(f"Column {name!r} never took the value {value!r} in the training data, so it cannot be "
                             f"conditioned on; choose one of {shown}{' ...' if len(c['categories']) > 8 else ''}.")
        return value
    if c.get("datetime"):
        try:
            value = pd.Timestamp(value)
        except (TypeError, ValueError):
            raise ValueError(f"Column {name!r} holds dates; condition on a date such as '2020-01-31'.") from None
        v = float(tabular.datetime_values(pd.Series([value]), c["datetime"])[0])
    else:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"Column {name!r} is numeric; condition on a number, not {value!r}.") from None
    if c["kind"] == "constant":
        if c["value"] is None or not math.isclose(v, c["value"], rel_tol=1e-9):
            raise ValueError(f"Column {name!r} was constant ({c['value']}) in the training data; it cannot take {value!r}.")
        return value
    if not c["min"] <= v <= c["max"]:
        raise ValueError(f"Column {name!r} ranged over [{c['min']:g}, {c['max']:g}] in the training data; "
                         f"{value!r} is outside it and cannot be conditioned on.")
    if c.get("integer") and v != round(v):
        raise ValueError(f"Column {name!r} holds whole numbers; condition on one, not {value!r}.")
    return value


@torch.inference_mode()
def conditional_latents(model, target: torch.Tensor, n: int, *, pool: int) -> torch.Tensor:
    """(n, L) latents, each resampled from ``pool`` prior draws with weights p(x_c | z)."""
    z = model.sample_latent(n * pool)  # (n * pool, L)
    log_w = model.decode(z).log_prob(target.expand(n * pool, -1)).reshape(n, pool)
    pick = torch.distributions.Categorical(logits=log_w).sample()  # (n,)
    return z.reshape(n, pool, -1)[torch.arange(n), pick]
