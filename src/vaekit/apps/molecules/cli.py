"""``vaekit molecules ...``: fit, sample, evaluate and optimise molecules from the command line.

    vaekit molecules fit smiles.txt --out mol/                # model + report.md (samples, interpolation, metrics, curves)
    vaekit molecules sample mol/ -n 1000 --out new.smi
    vaekit molecules evaluate new.smi --train smiles.txt --test test.smi
    vaekit molecules optimize mol/ --property penalized_logp --start start.smi --out better.csv

A SMILES file is one molecule per line (the first whitespace-separated field; a "smiles" header line
is skipped) or a CSV (optionally gzipped) with a SMILES column.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
from pathlib import Path

from vaekit.atomic import atomic_write
from vaekit.cli_common import add_overwrite, command

PROPERTY_NAMES = ("logp", "penalized_logp", "qed", "sa")  # properties.PROPERTIES, named here so --help stays light


def read_smiles(path: str) -> list[str]:
    """The SMILES strings of a file (see the module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No SMILES file at {p}; pass a text file with one SMILES per line or a CSV.")
    raw = p.read_bytes()
    try:
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"Could not read {p} as text ({e}); pass a plain or gzipped SMILES file.") from None
    if ".csv" in p.suffixes:
        import pandas as pd

        try:
            frame = pd.read_csv(io.StringIO(text))
        except (ValueError, pd.errors.ParserError) as e:
            raise ValueError(f"Could not read {p} as CSV ({e}).") from None
        cols = [c for c in frame.columns if str(c).lower() == "smiles"]
        if not cols:
            raise ValueError(f"{p} has no SMILES column; its columns are {list(frame.columns)[:10]}.")
        out = [str(s) for s in frame[cols[0]].dropna()]
    else:
        out = [line.split()[0] for line in text.splitlines() if line.strip()]
        if out and out[0].lower() == "smiles":
            out = out[1:]
    if not out:
        raise ValueError(f"{p} holds no SMILES strings; pass a file with one SMILES per line.")
    return out


def check_new(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise ValueError(f"{path} already exists; choose another path or pass --overwrite.")


def load_model(path: str):
    from vaekit.apps.molecules.estimator import MoleculeVAE

    if not (Path(path) / "config.json").is_file():
        raise FileNotFoundError(f"No molecule model at {path}: expected a directory made by `vaekit molecules fit`.")
    return MoleculeVAE.load(path)


def auto_or_whole(text: str) -> int | str:
    """A whole number given on the command line as an int; "auto" and anything else as given, for the
    estimator's parameter check to accept or refuse in one sentence."""
    return int(text) if text.strip().lstrip("-").isdigit() else text


def run_fit(args) -> int:
    from vaekit.apps.molecules.estimator import MoleculeVAE
    from vaekit.apps.molecules.metrics import Reference, moses_metrics
    from vaekit.apps.molecules.report import write_fit_report

    out = Path(args.out)
    if (out / "config.json").exists() and not args.overwrite:
        raise ValueError(f"{out} already holds a saved model; choose another --out or pass --overwrite.")
    smiles = read_smiles(args.data)
    vae = MoleculeVAE(representation=args.representation, latent_dim=args.latent_dim, epochs=auto_or_whole(args.epochs),
                      max_minutes=args.max_minutes, random_strings=auto_or_whole(args.random_strings), random_state=args.seed,
                      verbose=int(args.verbose))
    vae.fit(smiles)
    vae.save(out, overwrite=args.overwrite)
    samples = vae.sample(args.n_report, random_state=args.seed)
    reference = Reference(read_smiles(args.test)) if args.test else None
    metrics = moses_metrics(samples, train=smiles, reference=reference, ks=(args.n_report,))
    metrics["active_units"] = vae.active_units_
    from vaekit.apps.molecules.tokens import canonical

    valid = [c for c in (canonical(s) for s in smiles[:100]) if c]
    a, b = valid[0], valid[min(1, len(valid) - 1)]
    strip = (a, b, vae.interpolate(a, b, 8))
    report = write_fit_report(vae, out, metrics=metrics, samples=samples, interpolation=strip)
    atomic_write(out / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2)))
    print(f"fitted a {args.representation.upper()} VAE on {vae.n_train_} molecules ({vae.n_invalid_} invalid "
          f"skipped) in {vae.train_seconds_:.0f} s; {args.n_report} samples: valid {metrics['valid']:.3f}, "
          f"novelty {metrics.get('novelty', float('nan')):.3f}; saved to {out}, report {report}")
    return 0


def run_sample(args) -> int:
    vae = load_model(args.model_dir)
    if args.no_syntax_mask:
        vae.set_params(syntax_mask=False)
    out = Path(args.out)
    check_new(out, args.overwrite)
    if args.n < 1:
        raise ValueError(f"-n must be at least 1, got {args.n}.")
    canon = vae.sample(args.n, temperature=args.temperature, random_state=args.seed)
    raw = vae.sample(args.n, temperature=args.temperature, random_state=args.seed, strings=True)
    lines = [c if c is not None else (r or "") for c, r in zip(canon, raw)]  # invalid strings kept as generated
    atomic_write(out, lambda p: p.write_text("\n".join(lines) + "\n"))
    n_valid = sum(c is not None for c in canon)
    print(f"wrote {args.n} molecules to {out} ({n_valid} valid, {len({c for c in canon if c})} distinct)")
    return 0


def run_evaluate(args) -> int:
    from vaekit.apps.molecules.metrics import Reference, moses_metrics

    p = Path(args.generated)
    if not p.is_file():
        raise FileNotFoundError(f"No SMILES file at {p}; pass the file written by `vaekit molecules sample`.")
    lines = p.read_text().splitlines()
    generated = [line.split()[0] if line.strip() else None for line in lines]
    if not generated:
        raise ValueError(f"{p} is empty; pass a file with one generated SMILES per line.")
    train = read_smiles(args.train) if args.train else None
    reference = Reference(read_smiles(args.test)) if args.test else None
    metrics = moses_metrics(generated, train=train, reference=reference)
    text = json.dumps(metrics, indent=2)
    if args.out:
        atomic_write(Path(args.out), lambda q: q.write_text(text))
    print(text)
    return 0


def run_optimize(args) -> int:
    from vaekit.apps.molecules.optimize import canonical_starts, fit_property_head, optimize, summarise

    if args.steps < 0 or args.neighbours < 0:
        raise ValueError("--steps and --neighbours must be 0 or more; pass counts such as --steps 80 --neighbours 300.")
    out = Path(args.out)
    check_new(out, args.overwrite)
    start = read_smiles(args.start)
    canonical_starts(start)  # an invalid start molecule fails here, before the model and its property head
    train = read_smiles(args.train) if args.train else None
    vae = load_model(args.model_dir)
    head, fit_info = fit_property_head(vae, args.property, train, seed=args.seed)
    results = optimize(vae, head, start, prop=args.property, thresholds=(args.similarity,), steps=args.steps,
                       neighbours=args.neighbours, seed=args.seed)
    atomic_write(out, lambda p: results.to_csv(p, index=False))
    s = summarise(results).iloc[0]
    print(f"{args.property}: head R^2 {fit_info['r2_heldout']:.3f} on held-out molecules; improved "
          f"{s['success']:.1%} of {len(start)} molecules at similarity >= {args.similarity} (mean improvement "
          f"{s['improvement_mean']:.3f}); wrote {out}")
    return 0


def add_commands(subparsers) -> None:
    """Register ``molecules fit|sample|evaluate|optimize`` on an argparse subparsers object (importing
    nothing heavy: RDKit and torch load when a command runs)."""
    mol = subparsers.add_parser("molecules", help="Molecule generation: SELFIES/SMILES VAE, MOSES metrics, optimisation.",
                                description="Molecule generation: fit a SELFIES/SMILES VAE, sample molecules, "
                                            "score them with the MOSES metrics, optimise a property in latent space.")
    sub = mol.add_subparsers(dest="molecules_command", required=True, metavar="{fit,sample,evaluate,optimize}")
    f = command(sub, "fit", run_fit, "Fit a molecule VAE on a SMILES file and write a report.",
                "  vaekit molecules fit smiles.txt --out mol/\n"
                "  vaekit molecules fit smiles.txt --out mol/ --representation smiles --max-minutes 30")
    f.add_argument("data", help="SMILES file (one per line) or CSV with a SMILES column")
    f.add_argument("--out", required=True, help="directory for the model and report.md")
    f.add_argument("--representation", choices=("selfies", "smiles", "kekule_smiles"), default="selfies")
    f.add_argument("--latent-dim", type=int, default=64)
    f.add_argument("--epochs", default="auto", help="number of epochs, or auto (about 6000 steps)")
    f.add_argument("--max-minutes", type=float, default=None, help="stop training after this many minutes")
    f.add_argument("--random-strings", default="auto", metavar="N",
                   help="also train on N other SMILES of each molecule (atoms in a random order); auto: 20 up to "
                        "5,000 molecules, none from 20,000, linear in between")
    f.add_argument("--test", default=None, help="reference SMILES for FCD, SNN, Frag and Scaf in the report")
    f.add_argument("--n-report", type=int, default=1000, help="molecules sampled for the report's metrics")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--verbose", action="store_true")
    add_overwrite(f, "a model already in --out")
    s = command(sub, "sample", run_sample, "Sample molecules from a fitted model (canonical SMILES).",
                "  vaekit molecules sample mol/ -n 1000 --out new.smi")
    s.add_argument("model_dir")
    s.add_argument("-n", type=int, default=1000)
    s.add_argument("--out", required=True, help="SMILES file to write (one per line)")
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--no-syntax-mask", action="store_true",
                   help="SMILES models: sample every token from the model as it is, without the mask that keeps "
                        "branches and rings well formed and every atom within its valence")
    s.add_argument("--seed", type=int, default=0)
    add_overwrite(s, "--out")
    e = command(sub, "evaluate", run_evaluate, "MOSES metrics of a file of generated molecules.",
                "  vaekit molecules evaluate new.smi --train smiles.txt --test test.smi")
    e.add_argument("generated", help="generated SMILES, one per line")
    e.add_argument("--train", default=None, help="training SMILES (for novelty)")
    e.add_argument("--test", default=None, help="reference SMILES (for FCD, SNN, Frag, Scaf)")
    e.add_argument("--out", default=None, help="write the metrics as JSON here too")
    o = command(sub, "optimize", run_optimize, "Improve a property of molecules by gradient ascent in latent space.",
                "  vaekit molecules optimize mol/ --property penalized_logp --start start.smi --out better.csv")
    o.add_argument("model_dir")
    o.add_argument("--property", choices=PROPERTY_NAMES, default="penalized_logp")
    o.add_argument("--start", required=True, help="SMILES file of the molecules to improve")
    o.add_argument("--out", required=True, help="CSV: start, best molecule, values, improvement, similarity")
    o.add_argument("--train", default=None, help="molecules to fit the property head on (default: model samples)")
    o.add_argument("--similarity", type=float, default=0.4, help="minimum Tanimoto similarity to the start")
    o.add_argument("--steps", type=int, default=80)
    o.add_argument("--neighbours", type=int, default=300,
                   help="draws z ~ q(z|x) around each start decoded as candidates (default 300)")
    o.add_argument("--seed", type=int, default=0)
    add_overwrite(o, "--out")


def main(argv=None) -> int:
    """Stand-alone entry point (``python -m vaekit.apps.molecules.cli molecules ...``)."""
    parser = argparse.ArgumentParser(prog="vaekit")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
