"""boardfleet board agent: embedded AI board telemetry as Prometheus metrics."""

__version__ = "0.1.0"
