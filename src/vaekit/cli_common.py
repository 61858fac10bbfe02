"""What every ``vaekit`` subcommand shares: the command table's style, ``--overwrite`` (with the old
``--force`` as a deprecated alias), ``--config FILE``/``--set KEY=VALUE`` for commands that train an
estimator, and checks on output paths. Imports nothing heavy, so ``vaekit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


class UserError(ValueError):
    """A problem with the user's input; the message names it and the fix."""


def formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def command(sub, name: str, func, help: str, examples: str, *, description: str = "") -> argparse.ArgumentParser:
    """A subcommand with a one-line help, a description and examples in its ``--help``."""
    p = sub.add_parser(name, help=help, description=description or help, epilog="examples:\n" + examples,
                       formatter_class=formatter)
    p.set_defaults(func=func)
    p.add_argument("--threads", type=int, default=argparse.SUPPRESS, metavar="N",
                   help="CPU threads: N >= 1, or -1 for all cores (default: the library's policy)")
    return p


class ForceAlias(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is deprecated; use --overwrite.", file=sys.stderr)
        namespace.overwrite = True


def add_overwrite(p: argparse.ArgumentParser, what: str = "an existing output") -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace {what}")
    p.add_argument("--force", nargs=0, action=ForceAlias, help=argparse.SUPPRESS)


def add_settings(p: argparse.ArgumentParser, section: str) -> None:
    """``--config FILE`` (a TOML file with a ``[section]`` table) and repeatable ``--set KEY=VALUE``."""
    p.add_argument("--config", metavar="FILE", help=f"TOML file with a [{section}] table of settings")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. latent_dim=8 (repeatable)")
    p.set_defaults(settings_section=section)


def parse_value(text: str):
    """A TOML literal (8, 1e-3, true, [64, 64], "x"), or the bare text when it is not one."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def settings(args, cls, *, given: dict | None = None) -> dict:
    """Estimator parameters from ``--config`` ([section]) < options given on the command line
    (``given``) < ``--set``, checked against ``cls``'s constructor (unknown names get a "did you mean")."""
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [n for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self" and p.kind in kinds]
    out: dict = {}
    section = getattr(args, "settings_section", "")
    if getattr(args, "config", None):
        path = Path(args.config)
        try:
            table = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"Config file {str(path)!r} does not exist; check the path.") from None
        except tomllib.TOMLDecodeError as e:
            raise UserError(f"Config file {path} is not valid TOML ({e}).") from None
        extra = sorted(set(table) - {section})
        if extra:
            raise UserError(f"Config file {path} has section(s) {extra}; this command reads [{section}] only.")
        out.update(table.get(section, {}))
    out.update({k: v for k, v in (given or {}).items() if v is not None})
    for item in getattr(args, "set", []) or []:
        if "=" not in item:
            raise UserError(f"--set {item!r} needs the form key=value, e.g. --set latent_dim=8.")
        key, text = (s.strip() for s in item.split("=", 1))
        out[key.removeprefix(f"{section}.")] = parse_value(text)
    for key in out:
        if key not in names:
            near = difflib.get_close_matches(key, names, n=1)
            raise UserError(f"Unknown setting {key!r} for {cls.__name__}."
                            + (f" Did you mean {near[0]!r}?" if near else f" Valid settings: {', '.join(names)}."))
    return {k: tuple(v) if isinstance(v, list) else v for k, v in out.items()}


def new_output(path: str | Path, overwrite: bool) -> Path:
    """An output file that may be written: refused when it exists (unless ``overwrite``) or when its
    folder does not exist."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; choose another path or pass --overwrite to replace it.")
    if not path.parent.exists():
        raise UserError(f"The folder {path.parent} does not exist; create it or choose another path.")
    return path
