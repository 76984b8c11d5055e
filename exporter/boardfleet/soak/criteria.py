"""Soak verdict criteria: the ``soak:`` table of ``prometheus/thresholds.yml``.

The DDR bound itself is the alert's (``alerts.BoardDDRBandwidthHigh.ratio``), so the
report and the alert never disagree on what "above 40 %" means.
"""

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, Tuple

import yaml

from boardfleet.rules import ThresholdsError, _seconds

REPO_THRESHOLDS = Path(__file__).resolve().parents[3] / "prometheus" / "thresholds.yml"


@dataclass(frozen=True)
class Criteria:
    scrape_completeness_min: float = 0.95
    gap_min_seconds: float = 600
    reboots_max: int = 0
    mmz_loss_bytes_max: float = 8 * 2**20
    leak_bytes_per_hour_max: float = 2**20
    leak_r2_min: float = 0.8
    ddr_ratio: float = 0.40
    ddr_above_share_max: float = 0.05
    temperature_celsius_max: float = 85.0
    latency_p99_drift_max: float = 1.5
    latency_min_seconds: float = 0.01
    latency_window_seconds: float = 3600
    fail_on_alert_severities: Tuple[str, ...] = ("critical",)


_DURATIONS = {"gap_min": "gap_min_seconds", "latency_window": "latency_window_seconds"}


def from_thresholds(data: Dict[str, Any], where: str = "thresholds") -> Criteria:
    """Criteria from a parsed thresholds document (defaults for what it leaves out)."""
    soak = data.get("soak") or {}
    if not isinstance(soak, dict):
        raise ThresholdsError("%s: 'soak:' must be a mapping" % where)
    known = {f.name: f for f in fields(Criteria)}
    values: Dict[str, Any] = {}
    ddr = ((data.get("alerts") or {}).get("BoardDDRBandwidthHigh") or {}).get("ratio")
    if ddr is not None:
        values["ddr_ratio"] = float(ddr)
    for key, value in soak.items():
        name = _DURATIONS.get(key, key)
        if name not in known or name == "ddr_ratio":
            yaml_keys = {v: k for k, v in _DURATIONS.items()}
            allowed = sorted(yaml_keys.get(k, k) for k in known if k != "ddr_ratio")
            raise ThresholdsError("%s: unknown soak criterion %r (known: %s)"
                                  % (where, key, ", ".join(allowed)))
        try:
            if key in _DURATIONS:
                value = _seconds(str(value))
            elif name == "fail_on_alert_severities":
                value = tuple(str(v) for v in value)
            else:
                value = type(getattr(Criteria, name))(value)
        except (TypeError, ValueError) as e:
            raise ThresholdsError("%s: soak.%s: %s" % (where, key, e)) from None
        values[name] = value
    return Criteria(**values)


def load(path: str | Path | None = None) -> Criteria:
    """Criteria from ``path`` (default: ./prometheus/thresholds.yml, else the repo's)."""
    if path is None:
        local = Path("prometheus/thresholds.yml")
        path = local if local.exists() else REPO_THRESHOLDS
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise ThresholdsError("cannot read %s: %s" % (path, e.strerror)) from None
    except yaml.YAMLError as e:
        raise ThresholdsError("%s is not valid YAML: %s" % (path, e)) from None
    if not isinstance(data, dict):
        raise ThresholdsError("%s: expected a mapping" % path)
    return from_thresholds(data, str(path))
