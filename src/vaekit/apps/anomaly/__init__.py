"""Anomaly detection on tables (``AnomalyDetector``) and monitoring time series (``TimeSeriesDetector``).
Names load on first use, so the command line can register ``vaekit detect`` without importing torch."""

from importlib import import_module

NAMES = {"AnomalyDetector": "vaekit.apps.anomaly.detector", "TimeSeriesDetector": "vaekit.apps.anomaly.timeseries"}


def __getattr__(name: str):
    if name in NAMES:
        return getattr(import_module(NAMES[name]), name)
    raise AttributeError(f"module 'vaekit.apps.anomaly' has no attribute {name!r}")


__all__ = list(NAMES)
