"""Drift detection: per-deployment change detectors over live traffic (latency, errors,
output length, refusals, JSON validity, cascade acceptance) raising alerts, optionally
demoting the drifting model in routing until a person clears it."""

from thrifty.drift.alerts import DriftAlert
from thrifty.drift.monitor import DriftMonitor, build_monitor

__all__ = ["DriftAlert", "DriftMonitor", "build_monitor"]
