"""The fleet service's own metrics, on prometheus_client's default REGISTRY.

Served at ``GET /metrics`` next to whatever other parts of the service register there.
One series per board; a board removed from the inventory loses its series.
"""

import contextlib

from prometheus_client import Counter, Histogram

PROBES = Counter("boardfleet_probes_total",
                 "Agentless probes answered, by board (shared ones included).", ["board"])
PROBE_FAILURES = Counter("boardfleet_probe_failures_total",
                         "Agentless probes that could not read the board.", ["board"])
PROBES_SHARED = Counter("boardfleet_probes_shared_total",
                        "Probes answered by joining a probe of the same board already "
                        "running (single flight), without a worker of their own.", ["board"])
PROBE_DURATION = Histogram("boardfleet_probe_duration_seconds",
                           "Time to answer an agentless probe, by board.", ["board"],
                           buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def forget(board: str) -> None:
    """Drop a removed board's series."""
    for family in (PROBES, PROBE_FAILURES, PROBES_SHARED, PROBE_DURATION):
        with contextlib.suppress(KeyError):
            family.remove(board)
