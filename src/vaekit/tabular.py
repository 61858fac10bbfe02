"""``vaekit.tabular``: table quality (``quality_report``, ``QualityReport``) where users look for it; the
implementation lives with the synthetic-tables application (``vaekit.apps.tables.quality``)."""

from vaekit.apps.tables.quality import QualityReport, quality_report

__all__ = ["QualityReport", "quality_report"]
