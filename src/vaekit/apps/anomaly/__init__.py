"""Anomaly detection on tables (``AnomalyDetector``) and monitoring time series (``TimeSeriesDetector``)."""

from vaekit.apps.anomaly.detector import AnomalyDetector
from vaekit.apps.anomaly.timeseries import TimeSeriesDetector

__all__ = ["AnomalyDetector", "TimeSeriesDetector"]
