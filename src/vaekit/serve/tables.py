"""Table rows (``vaekit.data.tabular`` specs) for serving: the row description, the maps between user
rows and model rows, and the preprocessing's log-Jacobian. Shared by ``loading`` (runs and the front
door on tables) and ``detector`` (the ``AnomalyDetector``), which sit above this module."""

from __future__ import annotations

import math

import torch

from vaekit.serve.rows import RowSpec, table_json

HOW_TABLE = ("table rows: numeric columns standardised ((v - mean) / std), a categorical column one-hot over its "
             "categories (plus a last slot for unseen ones where the spec says unseen_slot), a constant column a "
             "block [equal, different]; NaN marks a missing cell (a whole block); columns in the spec's order")


def table_rows(spec: dict) -> RowSpec:
    """Rows in the table's original columns: numbers, category names, null for a missing cell."""
    from vaekit.data import tabular

    order = spec.get("order") or tabular.feature_names(spec)
    categories = {c["name"]: c["categories"] for c in spec["columns"] if c["kind"] == "categorical"}
    return RowSpec("table", (len(order),), list(order), categories, missing=True)


def table_maps(spec: dict):
    """(to_model, to_user, log-Jacobian per row in nats) for a table spec (``vaekit.data.tabular``)."""
    from vaekit.data import tabular

    def to_model(frame):
        return torch.from_numpy(tabular.encode_table(frame, spec, name="x"))

    def to_user(x):
        frame = tabular.decode_table(x.numpy().reshape(len(x), -1), spec)
        return {"columns": [str(c) for c in frame.columns], "x": table_json(frame)}

    return to_model, to_user, lambda x: tabular.log_jacobian_rows(x.cpu().numpy().reshape(len(x), -1), spec)


def table_shift(spec: dict) -> dict:
    """``graphs.RowShift`` terms of a table: -log std of each observed standardised numeric value."""
    from vaekit.data import tabular

    at, i = [], 0
    for c in spec["columns"]:
        if c["kind"] == "numeric":
            at.append(i)
        i += tabular.block_size(c)
    return {"at": at, "log_scale": [math.log(c["std"]) for c in spec["columns"] if c["kind"] == "numeric"]}
