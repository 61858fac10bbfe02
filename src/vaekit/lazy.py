"""Names that load on first use (PEP 562): a package lists where each public name lives, and importing the
package imports nothing heavy (the command line registers commands without importing torch)."""

from __future__ import annotations

from importlib import import_module


def lazy_names(package: str, names: dict[str, str]):
    """A module ``__getattr__`` that imports ``names[name]`` (a module path) and returns its ``name``."""

    def __getattr__(name: str):
        if name in names:
            return getattr(import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
