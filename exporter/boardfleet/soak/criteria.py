"""Soak verdict criteria: the ``soak:`` table of ``prometheus/thresholds.yml``.

Its keys, bounds and defaults are declared once, in :class:`boardfleet.thresholds.Soak`;
:class:`Criteria` is that table as a report applies and records it (durations in
seconds). The DDR bound itself is the alert's (``alerts.BoardDDRBandwidthHigh.ratio``),
so the report and the alert never disagree on what "above 40 %" means.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

from boardfleet.thresholds import Soak, Thresholds, seconds
from boardfleet.thresholds import load as load_thresholds

REPO_THRESHOLDS = Path(__file__).resolve().parents[3] / "prometheus" / "thresholds.yml"


@dataclass(frozen=True)
class Criteria:
    scrape_completeness_min: float
    gap_min_seconds: float
    reboots_max: int
    mmz_loss_bytes_max: float
    leak_bytes_per_hour_max: float
    leak_r2_min: float
    ddr_ratio: float | None  # None: no thresholds file could be read
    ddr_above_share_max: float
    temperature_celsius_max: float
    latency_p99_drift_max: float
    latency_min_seconds: float
    latency_window_seconds: float
    fail_on_alert_severities: Tuple[str, ...]


def from_soak(soak: Soak, ddr_ratio: float | None) -> Criteria:
    """Criteria from a checked ``soak:`` table and the DDR alert's ratio."""
    return Criteria(
        scrape_completeness_min=float(soak.scrape_completeness_min),
        gap_min_seconds=seconds(soak.gap_min),
        reboots_max=soak.reboots_max,
        mmz_loss_bytes_max=float(soak.mmz_loss_bytes_max),
        leak_bytes_per_hour_max=float(soak.leak_bytes_per_hour_max),
        leak_r2_min=float(soak.leak_r2_min),
        ddr_ratio=ddr_ratio,
        ddr_above_share_max=float(soak.ddr_above_share_max),
        temperature_celsius_max=float(soak.temperature_celsius_max),
        latency_p99_drift_max=float(soak.latency_p99_drift_max),
        latency_min_seconds=float(soak.latency_min_seconds),
        latency_window_seconds=seconds(soak.latency_window),
        fail_on_alert_severities=tuple(soak.fail_on_alert_severities),
    )


def from_thresholds(t: Thresholds) -> Criteria:
    return from_soak(t.soak, t.alerts.BoardDDRBandwidthHigh.ratio)


def defaults() -> Criteria:
    """The soak table's defaults, without a DDR bound (for reports nothing judged)."""
    return from_soak(Soak(), None)


def load(path: str | Path | None = None) -> Criteria:
    """Criteria from ``path`` (default: ./prometheus/thresholds.yml, else the repo's)."""
    if path is None:
        local = Path("prometheus/thresholds.yml")
        path = local if local.exists() else REPO_THRESHOLDS
    return from_thresholds(load_thresholds(path))
