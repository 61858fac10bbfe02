"""The ``vaekit`` command line: one parser. The core commands are registered here; each application
registers its own with ``add_commands(subparsers)`` from the modules in ``APP_MODULES`` (which import
nothing heavy at module level, so ``--help`` starts fast). Each subcommand sets ``func=`` via
``set_defaults``; ``func(args)`` returns an exit code (or None for 0).
``main(argv=None) -> int`` dispatches and turns ``UserError``, ``ValueError``, ``FileNotFoundError``,
scikit-learn's ``NotFittedError`` and user-input ``KeyError`` into one line ``error: <message>`` on
stderr and exit code 2; Ctrl-C gives 130; a closed output pipe (``vaekit info RUN | head``) exits quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from vaekit.cli_commands import (
    cmd_decode,
    cmd_encode,
    cmd_evaluate,
    cmd_info,
    cmd_interpolate,
    cmd_reconstruct,
    cmd_sample,
    cmd_train,
    cmd_traverse,
)
from vaekit.cli_common import UserError, add_overwrite, command, formatter

APP_MODULES = ("vaekit.apps.compression.cli", "vaekit.apps.anomaly.cli", "vaekit.apps.semisupervised.cli",
               "vaekit.apps.recommend.cli", "vaekit.apps.tables.cli", "vaekit.apps.molecules.cli", "vaekit.serve.cli")


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("vaekit")
    except PackageNotFoundError:
        return "unknown"


def add_data_options(p: argparse.ArgumentParser, *, split: str = "test") -> None:
    p.add_argument("data", nargs="?", default=None, metavar="DATA",
                   help="built-in name or path (default: the run's training data)")
    p.add_argument("--split", default=split, help=f"train, val, test or all (default: {split})")


# -- commands ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaekit", formatter_class=formatter,
        description="Variational autoencoders on your data: train, evaluate, sample, encode.",
        epilog="examples:\n  vaekit train digits --out runs/digits\n  vaekit info runs/digits\n"
               "  vaekit sample runs/digits -n 64 --out samples.png\n\n"
               "Run 'vaekit COMMAND --help' for a command's options.")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for torch: N >= 1, or -1 for all cores (default: the library's policy)")
    parser.add_argument("--version", action="version", version=f"vaekit {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = command(sub, "train", cmd_train, "Train a VAE and write a run directory.",
                "  vaekit train digits --out runs/digits\n"
                "  vaekit train data.csv --set data.label=species --set latent_dim=4\n"
                "  vaekit train --config configs/binarized_mnist.toml --out runs/mnist\n"
                "  vaekit train --resume runs/digits     # continue an interrupted run")
    p.add_argument("data", nargs="?", default=None, metavar="DATA",
                   help="built-in name (digits) or a path: .npy .npz .csv .parquet .mat, IDX, image folder")
    p.add_argument("--config", metavar="FILE", help="TOML file with [data], [model], [train] sections")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. model.latent_dim=8 or epochs=5 (repeatable)")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/<data name>)")
    add_overwrite(p, "a finished run in RUN_DIR")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="RUN_DIR",
                   help="continue from RUN_DIR/checkpoint.pt with the run's config.toml")
    p.add_argument("--k", type=int, default=100, help="importance samples for the test evaluation (default 100)")
    p.add_argument("--labels", metavar="COLUMN_OR_FILE",
                   help="with --semi-supervised: label column or file; -1 marks unlabelled rows")
    p.add_argument("--semi-supervised", action="store_true",
                   help="train a semi-supervised classifier (M2, Kingma et al. 2014); same as vaekit ssl-train")

    p = command(sub, "evaluate", cmd_evaluate, "ELBO, log-likelihood, KL, active units of a trained run.",
                "  vaekit evaluate runs/digits digits --k 1000\n"
                "  vaekit evaluate runs/tab new.csv --split all --json scores.json")
    p.add_argument("run_dir", metavar="RUN_DIR")
    add_data_options(p)
    p.add_argument("--k", type=int, default=1000, help="importance samples (default 1000)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="networks of the log-likelihood estimate in bfloat16: faster on CPUs with bf16 hardware, "
                        "likelihoods stay float32 (default fp32)")
    p.add_argument("--json", metavar="FILE", help="write here (default: RUN_DIR/evaluation.json)")

    p = command(sub, "sample", cmd_sample, "Draw new examples from the prior.",
                "  vaekit sample runs/digits -n 64 --out samples.png\n"
                "  vaekit sample runs/tab -n 1000 --out fake.csv")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--out", required=True, metavar="FILE", help=".png (images), .csv, .parquet or .npy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random", action="store_true", help="draw x ~ p(x|z) (the default for tables)")
    p.add_argument("--mean", action="store_true", help="decode the mean E[x|z] (the default for images)")
    p.add_argument("--class", dest="klass", metavar="K",
                   help="class-conditional samples of class K (semi-supervised runs); same as vaekit ssl-sample")
    add_overwrite(p, "FILE")

    p = command(sub, "reconstruct", cmd_reconstruct, "Encode and decode examples.",
                "  vaekit reconstruct runs/digits -n 16 --out recon.png\n"
                "  vaekit reconstruct runs/tab data.csv --split all --out recon.csv")
    p.add_argument("run_dir", metavar="RUN_DIR")
    add_data_options(p)
    p.add_argument("-n", type=int, default=32, help="first n examples; 0 = all (default 32)")
    p.add_argument("--out", required=True, metavar="FILE", help=".png, .csv, .parquet or .npy")

    p = command(sub, "encode", cmd_encode, "Write latent means E_q[z|x] (by extension).",
                "  vaekit encode runs/digits digits --split all --out z.parquet")
    p.add_argument("run_dir", metavar="RUN_DIR")
    add_data_options(p, split="all")
    p.add_argument("--out", required=True, metavar="FILE", help=".npy, .csv or .parquet")

    p = command(sub, "decode", cmd_decode, "Decode latent vectors (from vaekit encode) to data.",
                "  vaekit decode runs/digits z.npy --out decoded.png")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("latents", metavar="LATENTS", help=".npy, .csv or .parquet with latent_dim columns")
    p.add_argument("--out", required=True, metavar="FILE", help=".png, .csv, .parquet or .npy")

    p = command(sub, "interpolate", cmd_interpolate, "Decode a straight line between two examples' latents.",
                "  vaekit interpolate runs/digits digits 0 1 --out strip.png")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("data", metavar="DATA", help="built-in name or path")
    p.add_argument("a", type=int, metavar="A", help="index of the first example in the split")
    p.add_argument("b", type=int, metavar="B", help="index of the second example")
    p.add_argument("--split", default="test", help="train, val, test or all (default: test)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--out", required=True, metavar="FILE", help=".png strip or .csv")

    p = command(sub, "traverse", cmd_traverse, "Sweep one latent dimension at a time, the others at 0.",
                "  vaekit traverse runs/digits --out traversals.png\n"
                "  vaekit traverse runs/digits --dims 0 3 --steps 11 --span 2.5 --out t.png")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--dims", type=int, nargs="+", help="latent dimensions (default: the first 10)")
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--span", type=float, default=3.0, help="sweep from -span to +span (default 3)")
    p.add_argument("--out", required=True, metavar="FILE", help=".png grid or .csv")

    p = command(sub, "info", cmd_info, "What the model is, how it was trained, its numbers.",
                "  vaekit info runs/digits")
    p.add_argument("run_dir", metavar="RUN_DIR")

    for name in APP_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        module.add_commands(sub)
    return parser


def set_threads(n: int | None) -> None:
    """CPU threads for torch: ``--threads N`` (-1: all cores). Without it, every heavy path applies the
    library's policy itself (one thread on machines with two cores or fewer, where OpenMP workers
    spinning against other processes slow small models down). Before torch is imported the choice goes
    through OMP_NUM_THREADS, so commands that need no torch (``--help``, ``info``) never import it."""
    if n is None:
        return
    if n == 0 or n < -1:
        raise UserError(f"--threads must be 1 or more, or -1 for all cores; got {n}.")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = cores if n == -1 else n
    if "torch" in sys.modules:
        from vaekit.runtime import set_threads as use_threads

        use_threads(n)
    else:
        os.environ["OMP_NUM_THREADS"] = str(n)


def report(message: str) -> int:
    print("error: " + " ".join(str(message).split()), file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help / --version (0) or a usage error (2)
        return int(e.code or 0)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    import warnings

    env_before = os.environ.get("OMP_NUM_THREADS")
    torch_before = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    chosen_before = dict(sys.modules["vaekit.runtime"].CHOSEN) if "vaekit.runtime" in sys.modules else None
    try:
        set_threads(getattr(args, "threads", None))
        with warnings.catch_warnings():  # the library's warnings as one line each: "warning: ..."
            warnings.simplefilter("default")
            warnings.showwarning = lambda message, *a, **k: print(f"warning: {message}", file=sys.stderr)
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (e.g. | head): stop quietly
        sys.stderr.close()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, FileNotFoundError, KeyError, IsADirectoryError, NotADirectoryError) as e:
        if isinstance(e, KeyError) and not isinstance(e.args[0] if e.args else None, str):
            raise
        message = e.args[0] if isinstance(e, KeyError) else str(e)
        if isinstance(e, (FileNotFoundError, IsADirectoryError, NotADirectoryError)) and e.filename:
            message = f"{e.filename}: {e.strerror}; check the path."
        return report(message)
    except Exception as e:
        from sklearn.exceptions import NotFittedError

        if isinstance(e, NotFittedError):
            return report(str(e))
        raise
    finally:  # main() called in-process (tests, notebooks) leaves the caller's thread settings as they were
        if env_before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env_before
        if torch_before is not None and sys.modules["torch"].get_num_threads() != torch_before:
            sys.modules["torch"].set_num_threads(torch_before)
        if chosen_before is not None:
            sys.modules["vaekit.runtime"].CHOSEN.update(chosen_before)


if __name__ == "__main__":
    sys.exit(main())
