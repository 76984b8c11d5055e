"""The committed dashboards as test data: every panel query, and what it reads."""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Set

from support.paths import REPO

DASHBOARDS = REPO / "grafana" / "dashboards"
METRICS_DOC = REPO / "docs" / "metrics.md"
# Grafana variables -> values that select every board of the test Prometheus.
VARIABLES = [
    ('board="$board"', 'board=~".+"'), ("$board", ".+"), ("$platform", ".*"),
    ("$rack", ".*"), ("$owner", ".*"), ("$soak", ".*"), ("$model", ".+"),
    ("$__rate_interval", "20s"), ("$__interval", "20s"), ("$__range", "2m"),
]
# Variables Grafana itself provides (in queries, titles and data links).
BUILTIN = {"__rate_interval", "__interval", "__range", "__url_time_range", "__value",
           "__data", "__field", "__series"}
# Recording rules whose middle name is not a raw metric: what they are computed from.
RULE_SOURCES = {
    "board_accelerator_memory_bytes": {"board_ion_process_bytes",
                                       "board_dmabuf_process_bytes",
                                       "board_mmz_process_bytes"},
    "board_inference_latency_seconds": {"board_inference_latency_seconds_bucket"},
}
_LABELS = re.compile(r'\{[^}]*\}|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)'
                     r'|"[^"]*"')
_NAME = re.compile(r"\b([a-zA-Z_][a-zA-Z0-9_:]*)\b(?!\s*\()")


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    ref: str
    expr: str
    instant: bool = True

    @property
    def id(self) -> str:
        return "%s/%s/%s" % (self.dashboard.removesuffix(".json"), self.panel, self.ref)

    def promql(self) -> str:
        """The expression with Grafana's variables replaced."""
        out = self.expr
        for var, value in VARIABLES:
            out = out.replace(var, value)
        return out

    def branches(self) -> List[Set[str]]:
        """For each top-level ``or`` branch, the raw board metrics it needs (any of a set)."""
        return [_metrics(b) for b in self.promql().split(" or ")]

    def metrics(self) -> Set[str]:
        return _metrics(self.promql())


def _metrics(expr: str) -> Set[str]:
    names = set()
    for name in _NAME.findall(_LABELS.sub(" ", expr)):
        if name in ("up", "ALERTS") or name.startswith("board"):
            names.add(name.split(":")[1] if ":" in name else name)
    return names


def load(path: Path) -> Dict:
    return json.loads(path.read_text())


def files() -> List[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def panels(dashboard: Dict) -> Iterator[Dict]:
    """Every panel, rows' nested panels included."""
    for p in dashboard["panels"]:
        yield p
        yield from p.get("panels", [])


def targets() -> List[Target]:
    return [Target(path.name, p["title"], t["refId"], t["expr"], bool(t.get("instant")))
            for path in files() for p in panels(load(path)) for t in p.get("targets", [])]


def documented_metrics() -> Set[str]:
    """Board metrics of docs/metrics.md's tables (recording rules and self-metrics aside)."""
    text = METRICS_DOC.read_text()
    text = text.split("## Recording rules")[0]
    text = re.sub(r"## Self-metrics.*?(?=\n## )", "", text, flags=re.S)
    return {m for line in text.splitlines() if line.startswith("| `board_")
            for m in re.findall(r"`(board_[a-z0-9_]+)`", line.split(" | ")[0])}
