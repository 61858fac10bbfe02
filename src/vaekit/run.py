"""Run directories: the resolved config as TOML, training into a directory, loading a run back.

A run directory holds ``config.json`` + ``model.safetensors`` (``vaekit.io.save_model``, so
``vaekit.io.load_model(run_dir)`` works), ``config.toml`` (the resolved ``[data]``, ``[model]``,
``[train]`` sections), ``metrics.jsonl`` + ``checkpoint.pt`` (``vaekit.train.fit``),
``evaluation.json``, pictures and ``report.html``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit.atomic import atomic_write_text
from vaekit.config import (
    ModelConfig,
    TrainConfig,
    build_model,
    check_model_config,
    check_train_config,
    from_dict,
    to_dict,
)
from vaekit.data import BUILTINS, DEFAULTS, DataConfig, DataMeta, Dataset, load, tabular
from vaekit.data.dataset import check_data_config, choose_likelihood
from vaekit.evaluate import evaluate
from vaekit.generate import decode_mean, interpolation_latents, reconstruct, sample, traversal_latents  # noqa: F401
from vaekit.io import CONFIG, load_model, save_model
from vaekit.models import init_from_data
from vaekit.train import CHECKPOINT, METRICS, fit

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser from PyPI
    import tomli as tomllib

CONFIG_TOML, EVALUATION = "config.toml", "evaluation.json"
log = logging.getLogger("vaekit")
SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
BASE = {"model": {"likelihood": "auto"}}  # fields the data decides unless a config says otherwise


@dataclass
class RunConfig:
    data: DataConfig
    model: ModelConfig
    train: TrainConfig

    def to_sections(self) -> dict[str, dict]:
        return {name: to_dict(getattr(self, name)) for name in SECTIONS}


# -- TOML configs and --set overrides -----------------------------------------------------------
def read_toml(path: str | Path) -> dict[str, dict]:
    path = Path(path)
    try:
        sections = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"Config file {str(path)!r} does not exist; check the path.") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"Config file {path} is not valid TOML ({e}).") from None
    for name, values in sections.items():
        if name not in SECTIONS or not isinstance(values, dict):
            near = difflib.get_close_matches(name, SECTIONS, n=1)
            hint = f" Did you mean [{near[0]}]?" if near else ""
            raise ValueError(f"Unknown config section [{name}] in {path}; use [data], [model] and [train].{hint}")
    return sections


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"
    if v is None:
        return '""'
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def to_toml(sections: dict[str, dict]) -> str:
    """Flat TOML: one ``[section]`` per dict, ``key = value`` lines."""
    lines = []
    for name, values in sections.items():
        lines += [f"[{name}]", *(f"{k} = {toml_value(v)}" for k, v in values.items()), ""]
    return "\n".join(lines)


def parse_set(item: str) -> tuple[str, str, Any]:
    """``section.key=value`` or ``key=value`` (when only one section has that key) -> (section, key,
    value); the value is a TOML literal, or a bare string when it does not parse as one."""
    if "=" not in item:
        raise ValueError(f"--set {item!r} needs the form key=value, e.g. --set model.latent_dim=8.")
    name, text = (s.strip() for s in item.split("=", 1))
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    fields = {s: {f.name for f in dataclasses.fields(c)} for s, c in SECTIONS.items()}
    if "." in name:
        section, key = name.split(".", 1)
        if section not in SECTIONS:
            near = difflib.get_close_matches(section, SECTIONS, n=1)
            raise ValueError(f"Unknown config section {section!r} in --set {name}; use data, model or train"
                             + (f" (did you mean {near[0]!r}?)." if near else "."))
        return section, key, value
    owners = [s for s, names in fields.items() if name in names]
    if len(owners) == 1:
        return owners[0], name, value
    if owners:
        raise ValueError(f"--set {name} is ambiguous; write {' or '.join(f'{s}.{name}' for s in owners)}.")
    dotted = [f"{s}.{k}" for s, names in fields.items() for k in names]
    near = difflib.get_close_matches(name, [d.split(".", 1)[1] for d in dotted], n=1)
    hint = f" Did you mean {next(d for d in dotted if d.endswith('.' + near[0]))!r}?" if near else ""
    raise ValueError(f"Unknown config key {name!r}.{hint}")


def merge(*layers: dict[str, dict]) -> dict[str, dict]:
    out: dict[str, dict] = {name: {} for name in SECTIONS}
    for layer in layers:
        for name, values in layer.items():
            out.setdefault(name, {}).update(values)
    return out


def resolve_config(*, data: str | None = None, config_file: str | Path | None = None,
                   sets: list[str] = ()) -> RunConfig:
    """Defaults < built-in dataset defaults < config file < DATA argument < --set."""
    file_layer = read_toml(config_file) if config_file else {}
    data_layer = {"data": {"source": data}} if data else {}
    set_layer: dict[str, dict] = {}
    for item in sets:
        section, key, value = parse_set(item)
        set_layer.setdefault(section, {})[key] = value
    source = merge(file_layer, data_layer, set_layer)["data"].get("source", DataConfig.source)
    sections = merge(BASE, DEFAULTS.get(source, {}), file_layer, data_layer, set_layer)
    cfg = RunConfig(**{s: from_dict(c, sections[s], where=f"{s}.") for s, c in SECTIONS.items()})
    return RunConfig(check_data_config(cfg.data), check_model_config(cfg.model), check_train_config(cfg.train))


def read_run_config(run_dir: str | Path, sets: list[str] = ()) -> RunConfig:
    path = Path(run_dir) / CONFIG_TOML
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"Run directory {str(run_dir)!r} does not exist; train one with vaekit train.")
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} has no {CONFIG_TOML}; it is not a vaekit run directory.")
    import tomllib

    # a run written before train.lr_warmup existed trained without a warm-up: it continues so
    try:
        stored = tomllib.loads(path.read_text(encoding="utf-8")).get("train", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        stored = {"lr_warmup": None}  # resolve_config reports the damaged file
    older = [] if "lr_warmup" in stored else ["train.lr_warmup=0"]
    return resolve_config(config_file=path, sets=[*older, *sets])


def data_notes(meta: DataMeta, model: ModelConfig) -> list[str]:
    """What the run decided from the data, in sentences for its log."""
    notes = [f"data: {meta.scaling}"] if meta.scaling else []
    notes.append(f"model: {model.likelihood} likelihood, {model.network} network"
                 + (" (linear: hidden=[])" if not model.hidden and model.network == "mlp" else
                    f" with hidden widths {list(model.hidden)}"))
    return notes


def fill_from_data(cfg: ModelConfig, meta: DataMeta) -> ModelConfig:
    """Set the fields the data determines: the input shape, the likelihood when "auto" (tables: the
    table likelihood with the data's columns)."""
    likelihood, options = cfg.likelihood, dict(cfg.likelihood_options)
    if likelihood == "auto":
        likelihood = choose_likelihood(binary=meta.binary, table=meta.kind == "table")[0]
    if likelihood == "table":
        if meta.table is None:
            raise ValueError("likelihood 'table' needs tabular data (a .csv or .parquet file); choose another.")
        options = {"columns": tabular.likelihood_columns(meta.table), "min_scale": 0.05, **options}
    return dataclasses.replace(cfg, input_shape=tuple(meta.shape), likelihood=likelihood, likelihood_options=options)


# -- writing and reading runs ---------------------------------------------------------------------
def is_finished(run_dir: Path) -> bool:
    return (run_dir / CONFIG).exists()


def prepare_run_dir(run_dir: Path, *, overwrite: bool, resume: bool) -> None:
    """Refuse to clobber a finished run; with ``overwrite``, remove the old training state only."""
    if resume:
        if not (run_dir / CHECKPOINT).exists():
            raise FileNotFoundError(f"{run_dir} has no {CHECKPOINT} to resume from; train without --resume.")
        return
    if run_dir.exists() and not overwrite:
        if is_finished(run_dir):
            raise ValueError(f"{run_dir} already holds a finished run; pass --overwrite to replace it or "
                             "choose another --out.")
        if (run_dir / CHECKPOINT).exists():
            raise ValueError(f"{run_dir} holds an interrupted run; pass --resume to continue it or "
                             "--overwrite to start again.")
    if overwrite:
        for name in (CHECKPOINT, METRICS, CONFIG, EVALUATION):
            (run_dir / name).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)


def train_run(cfg: RunConfig, run_dir: str | Path, *, overwrite: bool = False, resume: bool = False,
              eval_k: int = 100, pictures: bool = True) -> dict:
    """The main job: load data, build and fit a model, save it, evaluate on the test split, draw
    pictures and the report. Returns the evaluation record."""
    run_dir = Path(run_dir)
    source = cfg.data.source
    if source not in BUILTINS and Path(source).expanduser().exists():  # the run works from any folder later
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, source=str(Path(source).expanduser().resolve())))
    dataset = load(config=cfg.data)
    cfg = dataclasses.replace(cfg, model=fill_from_data(cfg.model, dataset.meta))
    for note in data_notes(dataset.meta, cfg.model):
        log.info(note)
        print(note)
    created = not run_dir.exists()
    prepare_run_dir(run_dir, overwrite=overwrite, resume=resume)
    try:
        return run_in(cfg, run_dir, dataset, resume=resume, eval_k=eval_k, pictures=pictures)
    except Exception:
        if created and not (run_dir / CHECKPOINT).exists():  # a failed start leaves nothing behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def run_in(cfg: RunConfig, run_dir: Path, dataset: Dataset, *, resume: bool, eval_k: int, pictures: bool) -> dict:
    """``train_run``'s work once the run directory is prepared."""
    atomic_write_text(run_dir / CONFIG_TOML, to_toml(cfg.to_sections()))
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model)
    init_from_data(model, dataset.x_train)
    x_val = dataset.x_val if len(dataset.x_val) else None
    t0 = time.perf_counter()
    history = fit(model, dataset.x_train, x_val=x_val, config=cfg.train, out_dir=run_dir, resume=resume)
    model.eval()
    shift = dataset.meta.log_jacobian
    last = history.records[-1] if history.records else {}
    training = {"epochs": len(history.records), "best_epoch": history.best_epoch,
                "stopped_early": history.stopped_early, "seconds": round(time.perf_counter() - t0, 2),
                "n_train": len(dataset.x_train), "n_val": len(dataset.x_val), "n_test": len(dataset.x_test),
                "val_elbo": last.get("val_elbo", math.nan) + shift, "val_kl": last.get("val_kl", math.nan),
                "train_elbo": last.get("train_elbo", math.nan) + shift}
    from vaekit.report import training_details  # saved-weights epoch, validation spread, date, versions, device

    training.update(training_details(model, history, cfg.train, x_val=x_val, meta=dataset.meta))
    save_model(model, cfg.model, run_dir, kind="run",
               extra={"run": 1, "data": dataset.meta.to_dict(), "training": training})
    x_test, y_test = dataset.split("test") if len(dataset.x_test) else dataset.split("all")
    record = evaluate_model(model, dataset.meta, x_test, k=eval_k, progress=cfg.train.progress)
    record["split"] = "test" if len(dataset.x_test) else "all"
    atomic_write_text(run_dir / EVALUATION, json.dumps(record, indent=2))
    if pictures:
        from vaekit.plots import draw_run_pictures
        from vaekit.report import write_report

        draw_run_pictures(run_dir, model, dataset.meta, x_test, y_test, history.records)
        write_report(run_dir)
    return record


def load_run(run_dir: str | Path, *, device: str = "cpu") -> tuple[torch.nn.Module, RunConfig, DataMeta]:
    """(model in eval mode, resolved config, data metadata) of a finished run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"Run directory {str(run_dir)!r} does not exist; train one with vaekit train.")
    if not is_finished(run_dir):
        raise FileNotFoundError(f"{run_dir} holds no finished run (no {CONFIG}); finish it with "
                                f"vaekit train --resume {run_dir}.")
    model, model_cfg, extra = load_model(run_dir, device=device)
    if "data" not in extra:
        raise ValueError(f"{run_dir} holds a model saved without vaekit train; it has no data metadata.")
    cfg = dataclasses.replace(read_run_config(run_dir), model=model_cfg)
    return model, cfg, DataMeta.from_dict(extra["data"])


def load_for_run(source: str | None, cfg: RunConfig, meta: DataMeta) -> Dataset:
    """Data for a trained run: same options and the run's stored preprocessing; shape checked."""
    dataset = load(source, cfg.data, table=meta.table)
    if tuple(dataset.meta.shape) != tuple(meta.shape):
        raise ValueError(f"The data has examples of shape {tuple(dataset.meta.shape)} but the model was "
                         f"trained on {tuple(meta.shape)}; use data like the training data.")
    return dataset


def evaluate_model(model, meta: DataMeta, x: torch.Tensor, *, k: int = 1000, progress: bool = False,
                   precision: str = "fp32") -> dict:
    """ELBO, importance-weighted log-likelihood, KL, active units and reconstruction error. Densities
    are in nats in the data's original units (the standardisation's log-Jacobian is added)."""
    record = evaluate(model, x, k=k, progress=progress, precision=precision)
    shift = float(np.mean(meta.log_jacobian_rows(x)))
    for key in ("elbo", "log_px_z", "log_likelihood", "log_likelihood_median"):
        if key in record:
            record[key] += shift
    bits = record["n_dims"] * math.log(2)
    record["elbo_bits_per_dim"] = -record["elbo"] / bits
    if "log_likelihood" in record:
        record["nll"] = -record["log_likelihood"]
        record["bits_per_dim"] = record["nll"] / bits
    record["log_jacobian"] = shift
    record["units"] = "nats per example, original units" if meta.table else (
        "nats per example, values as the model sees them (pixels in [0, 1])")
    recon = reconstruct(model, x)
    record["reconstruction_mse"] = float(((recon - x) ** 2).nan_to_num(0.0).reshape(len(x), -1).sum(1).mean())
    return record


def worker_train(cfg: RunConfig, run_dir, *, resume: bool = False) -> int:
    """``vaekit train`` on a DDP rank other than 0: the same data and model as ``train_run``, trained
    in step with rank 0; rank 0 alone writes the run directory and evaluates."""
    dataset = load(config=cfg.data)
    model_cfg = fill_from_data(cfg.model, dataset.meta)
    torch.manual_seed(cfg.train.seed)
    model = build_model(model_cfg)
    init_from_data(model, dataset.x_train)
    x_val = dataset.x_val if len(dataset.x_val) else None
    fit(model, dataset.x_train, x_val=x_val, config=cfg.train, out_dir=run_dir, resume=resume)
    return 0
