"""Prometheus metrics of a running swarm: `reverie up --metrics-port PORT` serves `/metrics`."""

from .collect import ROUND_BUCKETS, SwarmMetrics
from .serve import MetricsServer

__all__ = ["ROUND_BUCKETS", "MetricsServer", "SwarmMetrics"]
