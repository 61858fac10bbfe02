"""What each ``vaekit`` subcommand does (``vaekit.cli`` holds the argument table and ``main``).

Each ``cmd_*`` takes the parsed ``argparse.Namespace`` and returns an exit code; problems with the
user's input are raised as ``UserError`` / ``ValueError`` with one sentence, which ``main`` prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vaekit.cli_common import UserError


def cmd_train(args) -> int:
    from vaekit.run import read_run_config, resolve_config, train_run

    if args.semi_supervised or args.labels:
        if not (args.semi_supervised and args.labels and args.data and args.out):
            raise UserError("Semi-supervised training needs DATA, --labels, --out and --semi-supervised, e.g. "
                            "vaekit train data.csv --labels digit --semi-supervised --out runs/ssl.")
        from vaekit.apps.semisupervised.cli import train_classifier

        return train_classifier(args.data, args.labels, args.out, overwrite=args.overwrite,
                                params=settings_from_sets(args.set))

    if args.k < 1:
        raise UserError(f"--k must be a positive number of importance samples (e.g. 100), got {args.k}.")
    resume = args.resume is not None
    out = Path(args.resume) if isinstance(args.resume, str) else None
    if resume:
        out = out or (Path(args.out) if args.out else None)
        if out is None:
            raise UserError("--resume needs the run directory: vaekit train --resume RUN_DIR.")
        cfg = read_run_config(out, args.set)
    else:
        if args.data is None and args.config is None:
            raise UserError("Name the data to train on, e.g. vaekit train digits (or give --config FILE).")
        cfg = resolve_config(data=args.data, config_file=args.config, sets=args.set)
        out = Path(args.out) if args.out else Path("runs") / Path(cfg.data.source).stem
    from vaekit import distributed

    if distributed.setup() and not distributed.is_main():  # torchrun: ranks > 0 train in step, write nothing
        from vaekit.run import worker_train

        return worker_train(cfg, out, resume=resume)
    try:
        record = train_run(cfg, out, overwrite=args.overwrite, resume=resume, eval_k=args.k)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the checkpoint is in {out}; continue with: vaekit train --resume {out}",
              file=sys.stderr)
        return 130
    print_record(record, title=f"test split of {cfg.data.source}")
    print(f"\nrun written to {out}/ (open {out / 'report.html'})")
    return 0


def settings_from_sets(items: list[str]) -> dict:
    """``--set key=value`` items as estimator parameters (for ``train --semi-supervised``)."""
    from vaekit.cli_common import parse_value

    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--set {item!r} needs the form key=value, e.g. --set latent_dim=8.")
        key, text = (t.strip() for t in item.split("=", 1))
        out[key.split(".")[-1]] = parse_value(text)
    return out


def directory_kind(path: str) -> tuple[str, dict]:
    """("run" | "estimator" | "model", config.json) of any directory vaekit writes (no torch needed)."""
    from vaekit.io_config import read_config

    meta = read_config(path)
    extra = meta.get("extra", {})
    if extra.get("estimator"):
        return "estimator", meta
    return ("run" if meta.get("kind") == "run" or "run" in extra else "model"), meta


def read_rows(path: str, *, drop: list[str] = ()):
    """Rows of a data file through vaekit.data's readers, leaving out the named columns of a table."""
    from vaekit.data.readers import read_source

    x = read_source(Path(path)).x
    if hasattr(x, "columns"):
        x = x.drop(columns=[c for c in drop if c in x.columns])
    return x


def cmd_evaluate(args) -> int:
    from vaekit.atomic import atomic_write_text

    kind, meta = directory_kind(args.run_dir)
    if args.k < 1:
        raise UserError(f"--k must be a positive number of importance samples, got {args.k}.")
    if kind == "run":
        from vaekit.run import EVALUATION, evaluate_model, load_for_run, load_run

        model, cfg, data_meta = load_run(args.run_dir)
        x, _ = load_for_run(args.data, cfg, data_meta).split(args.split)
        record = evaluate_model(model, data_meta, x, k=args.k, progress=True, precision=args.precision)
        record["split"], record["data"] = args.split, args.data or cfg.data.source
        default = Path(args.run_dir) / EVALUATION
        title = f"{args.split} split of {record['data']}"
    else:
        if args.data is None:
            raise UserError(f"{args.run_dir} is not a training run, so it does not know its data; name the data: "
                            f"vaekit evaluate {args.run_dir} DATA.")
        from vaekit.loading import load

        obj = load(args.run_dir)
        if kind == "estimator":
            if args.precision != "fp32":
                raise UserError(f"--precision {args.precision} applies to training runs and saved models; "
                                f"{args.run_dir} is an estimator, which evaluates in float32: drop --precision.")
            notes = getattr(obj, "notes_", {}) or {}
            drop = [*notes.get("ignore", []), *([notes["labels"]] if notes.get("labels") else []),
                    *([obj.label_column_] if getattr(obj, "label_column_", None) else [])]
            record = obj.evaluate(read_rows(args.data, drop=drop), k=args.k)
        else:
            import numpy as np
            import torch

            from vaekit.evaluate import evaluate

            x = np.asarray(read_rows(args.data), dtype=np.float32)
            record = evaluate(obj, torch.from_numpy(x.reshape(len(x), *obj.event_shape)), k=args.k,
                              precision=args.precision)
        record["data"] = args.data
        default = Path(args.run_dir) / "evaluation.json"
        title = f"{args.data} ({meta.get('extra', {}).get('estimator') or meta.get('family', 'model')})"
    path = Path(args.json) if args.json else default
    atomic_write_text(path, json.dumps(record, indent=2))
    print_record(record, title=title)
    print(f"\nwritten to {path}")
    return 0


def print_record(record: dict, *, title: str) -> None:
    rows = [("ELBO", "elbo", "nats"), ("log p(x) (IWAE)", "log_likelihood", "nats"),
            ("NLL", "bits_per_dim", "bits/dim"), ("KL", "kl", "nats"), ("E_q log p(x|z)", "log_px_z", "nats"),
            ("active units", "active_units", f"of {record.get('latent_dim', len(record.get('kl_per_dim') or []) or '?')}"),
            ("M2 bound U(x)", "unlabelled_bound", "nats"), ("accuracy", "accuracy", ""),
            ("reconstruction error", "reconstruction_mse", "sq. error per example"),
            ("importance samples k", "k", ""), ("examples", "n_examples", "")]
    print(f"{title} ({record.get('units', 'nats per example')}):")
    for label, key, unit in rows:
        if key in record:
            v = record[key]
            print(f"  {label:<22} {v:>12.4f} {unit}" if isinstance(v, float) else f"  {label:<22} {v:>12} {unit}")


def images_or_table(path: str | Path, x, meta, *, ncol: int = 8, pairs=None) -> Path:
    """Write model-space rows as a PNG grid (image data) or as a data file in original units."""
    from vaekit.data.outputs import to_user, write_array
    from vaekit.plots import as_images, image_grid, pairs_grid, save_png

    path = Path(path)
    if path.suffix.lower() == ".png":
        if not meta.image_shape:
            raise UserError(f"{meta.name} is not image data; write {path.stem}.csv instead of a PNG.")
        images = as_images(x, meta)
        if pairs is not None:
            images = pairs_grid(as_images(pairs, meta), images, ncol=ncol)
        return save_png(image_grid(images, ncol), path)
    return write_array(path, to_user(x.numpy(), meta), names=meta.feature_names or None)


def cmd_sample(args) -> int:
    from vaekit.run import load_run, sample

    if args.klass is not None:
        from vaekit.apps.semisupervised.cli import sample_class

        return sample_class(args.run_dir, args.klass, args.n, args.out, seed=args.seed, mean=args.mean,
                            overwrite=args.overwrite)

    if args.n < 0:
        raise UserError(f"-n must be 0 or more samples, got {args.n}.")
    model, _, meta = load_run(args.run_dir)
    if args.n == 0:
        print("nothing to do: -n 0 asks for no samples")
        return 0
    mean = args.mean or (bool(meta.image_shape) and not args.random)
    x = sample(model, args.n, seed=args.seed, mean=mean)
    print(f"wrote {images_or_table(args.out, x, meta)}")
    return 0


def cmd_reconstruct(args) -> int:
    from vaekit.run import load_for_run, load_run, reconstruct

    if args.n < 0:
        raise UserError(f"-n must be 0 (every example) or a positive number, got {args.n}.")
    model, cfg, meta = load_run(args.run_dir)
    x, _ = load_for_run(args.data, cfg, meta).split(args.split)
    x = x[: args.n] if args.n else x
    out = images_or_table(args.out, reconstruct(model, x), meta, pairs=x)
    print(f"wrote {out}" + (" (originals above reconstructions)" if out.suffix == ".png" else ""))
    return 0


def cmd_encode(args) -> int:
    from vaekit.data.outputs import write_array
    from vaekit.evaluate import posterior_means
    from vaekit.run import load_for_run, load_run

    model, cfg, meta = load_run(args.run_dir)
    x, y = load_for_run(args.data, cfg, meta).split(args.split)
    z = posterior_means(model, x).numpy()
    names = [f"z{i}" for i in range(z.shape[1])]
    if y is not None and Path(args.out).suffix.lower() != ".npy":
        import pandas as pd

        frame = pd.DataFrame(z, columns=names)
        frame["label"] = [meta.class_names[i] for i in y.tolist()]
        z = frame
    print(f"wrote {write_array(args.out, z, names=names)} ({len(x)} latent means)")
    return 0


def cmd_decode(args) -> int:
    import torch

    from vaekit.data.outputs import read_latents
    from vaekit.run import decode_mean, load_run

    model, _, meta = load_run(args.run_dir)
    z = torch.from_numpy(read_latents(args.latents, model.latent_dim))
    print(f"wrote {images_or_table(args.out, decode_mean(model, z), meta)}")
    return 0


def cmd_interpolate(args) -> int:
    from vaekit.evaluate import posterior_means
    from vaekit.run import decode_mean, interpolation_latents, load_for_run, load_run

    if args.steps < 0:
        raise UserError(f"--steps must be 0 or more, got {args.steps}.")
    if args.steps < 2:
        print(f"--steps {args.steps}: drawing the two end points only")
    model, cfg, meta = load_run(args.run_dir)
    x, _ = load_for_run(args.data, cfg, meta).split(args.split)
    for i in (args.a, args.b):
        if not -len(x) <= i < len(x):
            raise UserError(f"Index {i} is out of range: the {args.split} split has {len(x)} examples.")
    za, zb = posterior_means(model, x[[args.a, args.b]])
    x_out = decode_mean(model, interpolation_latents(za, zb, args.steps))
    print(f"wrote {images_or_table(args.out, x_out, meta, ncol=len(x_out))}")
    return 0


def cmd_traverse(args) -> int:
    from vaekit.run import decode_mean, load_run, traversal_latents

    if args.steps < 0:
        raise UserError(f"--steps must be 0 or more, got {args.steps}.")
    if not args.span > 0:
        raise UserError(f"--span must be positive, got {args.span}.")
    if args.steps < 2:
        print(f"--steps {args.steps}: drawing the end points -span and +span only")
        args.steps = 2
    model, _, meta = load_run(args.run_dir)
    dims = args.dims if args.dims is not None else list(range(min(10, model.latent_dim)))
    bad = [d for d in dims if not 0 <= d < model.latent_dim]
    if bad:
        raise UserError(f"Latent dimension(s) {bad} do not exist; the model has latent_dim={model.latent_dim}.")
    z = traversal_latents(model.latent_dim, dims, steps=args.steps, span=args.span)
    print(f"wrote {images_or_table(args.out, decode_mean(model, z), meta, ncol=args.steps)} "
          f"(rows: dimensions {dims}; columns: {-args.span} to {args.span})")
    return 0


def cmd_info(args) -> int:
    kind, meta = directory_kind(args.run_dir)
    if kind == "run":
        return run_info(args.run_dir)
    m, extra = meta["model"], meta.get("extra", {})
    name = extra.get("estimator") or "saved model"
    print(f"{name} in {args.run_dir} (format {meta.get('format_version')}"
          + (f", upgraded from format {meta['upgraded_from']}" if meta.get("upgraded_from") else "") + ")")
    print(f"  model     family {m.get('family', 'vae')}, {m.get('network', 'mlp')} network, hidden "
          f"{tuple(m.get('hidden', ()))}, latent {tuple(m.get('latent_dims') or ()) or m.get('latent_dim')}, "
          f"{m.get('likelihood')} likelihood, {m.get('prior')} prior, input shape {tuple(m.get('input_shape', ()))}")
    params = extra.get("params", {})
    if params:
        print("  params    " + ", ".join(f"{k}={v}" for k, v in sorted(params.items())))
    state = extra.get("state", extra)
    if "threshold" in state:
        print(f"  threshold {float(state['threshold']):.4g} (scores above it are flagged)")
    if "classes" in state:
        print(f"  classes   {state['classes']}")
    path = Path(args.run_dir) / "evaluation.json"
    if path.exists():
        print_record(json.loads(path.read_text()), title="evaluation.json")
    return 0


def run_info(run_dir: str) -> int:
    """What a training run is, from its config files alone (fast: no model is loaded)."""
    from vaekit.cli_common import tomllib
    from vaekit.io_config import read_config

    meta = read_config(run_dir)
    extra, m = meta["extra"], meta["model"]
    toml_path = Path(run_dir) / "config.toml"
    if not toml_path.exists():
        raise UserError(f"{run_dir} has no config.toml; it is not a vaekit run directory.")
    sections = tomllib.loads(toml_path.read_text())
    t, data, tr = sections.get("train", {}), extra.get("data", {}), extra.get("training", {})
    print(f"run {run_dir}")
    print(f"  data      {sections.get('data', {}).get('source')} ({data.get('kind')}, example shape "
          f"{tuple(data.get('shape', ()))}, {len(data.get('class_names', []))} classes)")
    print(f"  model     {m.get('family', 'vae')} family, {m.get('network')} network, hidden {tuple(m.get('hidden', ()))}, "
          f"latent_dim {m.get('latent_dim')}, {m.get('likelihood')} likelihood, {m.get('prior')} prior")
    print(f"  training  {tr.get('epochs')} epochs of {t.get('epochs')}, batch {t.get('batch_size')}, lr {t.get('lr')}, "
          f"{t.get('objective')} objective, {tr.get('seconds')} s; {tr.get('n_train')} train / "
          f"{tr.get('n_val')} val / {tr.get('n_test')} test examples")
    print(f"  validation ELBO {tr.get('val_elbo', float('nan')):.4f} nats, KL {tr.get('val_kl', float('nan')):.4f} nats "
          f"(last epoch{'; original units' if data.get('table') else ''})")
    path = Path(run_dir) / "evaluation.json"
    if path.exists():
        print_record(json.loads(path.read_text()), title="evaluation.json")
    return 0


# -- parser -----------------------------------------------------------------------------------------
