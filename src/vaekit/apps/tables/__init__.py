"""Synthetic tables: ``TabularSynthesizer`` (mixed-type generation, conditional sampling, log p(row)),
``quality_report`` (column shapes, column-pair trends, ML efficacy, privacy; data frame and HTML) and
``augment_table`` (synthetic rows of a chosen class). Names load on first use (the command line stays light)."""

from importlib import import_module

NAMES = {"augment_table": "vaekit.apps.tables.augment", "QualityReport": "vaekit.apps.tables.quality",
         "quality_report": "vaekit.apps.tables.quality", "TabularSynthesizer": "vaekit.apps.tables.synthesizer"}


def __getattr__(name: str):
    if name in NAMES:
        return getattr(import_module(NAMES[name]), name)
    raise AttributeError(f"module 'vaekit.apps.tables' has no attribute {name!r}")


__all__ = list(NAMES)
