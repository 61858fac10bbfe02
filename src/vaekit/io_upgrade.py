"""Read directories written by the previous release (format version 1) as the current format.

Format 1 had no model family in ``config.json``; M2 directories were "vaekit-model" with
``extra.model_class == "SemiSupervisedVAE"`` and weights without the ``vae.`` prefix; hierarchical
models had their own "vaekit-hierarchical" format; anomaly detectors stored a Gaussian likelihood whose
``loc`` slices were read as categorical logits. ``upgrade`` rewrites such a config (and records how
its weights are renamed, applied by ``upgrade_weights``) so one loader opens all of them.
"""

from __future__ import annotations

import copy

FORMATS_V1 = ("vaekit-hierarchical",)
DETECTORS = ("AnomalyDetector", "TimeSeriesDetector")


def upgrade(meta: dict) -> dict:
    """A current-format copy of ``meta`` (returned unchanged when already current)."""
    if meta.get("format_version", 0) >= 2 and meta.get("format") == "vaekit-model":
        return meta
    meta = copy.deepcopy(meta)
    steps: list[list] = []
    extra = meta.setdefault("extra", {})
    if meta.get("format") == "vaekit-hierarchical":
        spec = meta["model"]
        meta["model"] = {"family": "hierarchical", "input_shape": [spec["in_features"]],
                         "latent_dims": [spec["z2_dim"], spec["z1_dim"]], "latent_dim": spec["z2_dim"],
                         "hidden": spec["hidden"], "activation": spec["activation"],
                         "likelihood": spec["likelihood"], "prior": spec["prior"],
                         "prior_components": spec["n_components"]}
        meta["kind"] = "model"
    elif extra.get("model_class") == "SemiSupervisedVAE":
        meta["model"]["family"] = "m2"
        steps.append(["prefix", "vae.", "classifier."])
    elif extra.get("estimator") in DETECTORS:
        columns = detector_columns(extra["layout"])
        n_numeric = sum(c["kind"] == "numeric" for c in columns)
        min_scale = float(extra.get("params", {}).get("min_scale", 0.0))
        meta["model"].update(likelihood="table", likelihood_options={"columns": columns, "min_scale": min_scale})
        steps.append(["truncate", "likelihood.raw_scale", n_numeric])
    if meta["model"].get("likelihood") == "gaussian":  # format 1: the Gaussian scale's floor was 1e-3
        meta["model"].setdefault("likelihood_options", {}).setdefault("min_scale", 1e-3)
    meta["model"].setdefault("family", "vae")
    meta["family"] = meta["model"]["family"]
    meta.setdefault("kind", extra.get("estimator") or ("run" if "run" in extra else "model"))
    meta["format"], meta["format_version"], meta["weight_upgrades"] = "vaekit-model", 2, steps
    meta["upgraded_from"] = 1
    return meta


def detector_columns(layout: dict) -> list[dict]:
    """The table likelihood's columns for a format-1 detector layout: numeric columns, then one block per
    categorical column (its categories and an 'unseen' slot), then a 2-slot block per constant column."""
    columns = [{"name": n, "kind": "numeric"} for n in layout["numeric"]]
    columns += [{"name": n, "kind": "categorical", "size": len(c) + 1} for n, c in layout["categorical"].items()]
    if layout.get("constant_value") is not None:
        columns += [{"name": n, "kind": "categorical", "size": 2} for n in layout["constant"]]
    return columns


def upgrade_weights(meta: dict, state: dict) -> dict:
    """Apply the renames ``upgrade`` recorded for a format-1 directory."""
    for step in meta.get("weight_upgrades", []):
        if step[0] == "prefix":
            _, prefix, keep = step
            state = {k if k.startswith(keep) else prefix + k: v for k, v in state.items()}
        elif step[0] == "truncate":
            _, key, n = step
            state[key] = state[key][:n].clone()
    return state
