"""Synthetic tables: ``TabularSynthesizer`` (mixed-type generation, conditional sampling, log p(row)),
``quality_report`` (column shapes, column-pair trends, ML efficacy, privacy; data frame and HTML) and
``augment_table`` (synthetic rows of a chosen class). Names load on first use (the command line stays light)."""

from vaekit.lazy import lazy_names

NAMES = {"augment_table": "vaekit.apps.tables.augment", "QualityReport": "vaekit.apps.tables.quality",
         "quality_report": "vaekit.apps.tables.quality", "TabularSynthesizer": "vaekit.apps.tables.synthesizer"}


__getattr__ = lazy_names(__name__, NAMES)


__all__ = list(NAMES)
