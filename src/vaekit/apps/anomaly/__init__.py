"""Anomaly detection on tables (``AnomalyDetector``) and monitoring time series (``TimeSeriesDetector``).
Names load on first use, so the command line can register ``vaekit detect`` without importing torch."""

from vaekit.lazy import lazy_names

NAMES = {"AnomalyDetector": "vaekit.apps.anomaly.detector", "TimeSeriesDetector": "vaekit.apps.anomaly.timeseries"}


__getattr__ = lazy_names(__name__, NAMES)


__all__ = list(NAMES)
