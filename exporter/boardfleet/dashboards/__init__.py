"""Grafana dashboards as code (grafana-foundation-sdk), rendered to grafana/dashboards/*.json.

``python -m boardfleet.dashboards`` rewrites the JSON; ``--check`` fails on drift.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from boardfleet.dashboards import annotations, board, fleet, soak
from boardfleet.dashboards.common import REPO

OUT_DIR = REPO / "grafana" / "dashboards"
BUILDERS: dict[str, Callable[[], Dashboard]] = {
    "fleet-overview.json": fleet.build,
    "board-detail.json": board.build,
    "soak-test.json": soak.build,
}


def render(build: Callable[[], Dashboard]) -> str:
    """The dashboard as stable, pretty JSON text (panel ids numbered in order)."""
    data: dict[str, Any] = json.loads(json.dumps(build().build(), cls=JSONEncoder))
    flat = [q for p in data["panels"] for q in (p, *p.get("panels", []))]
    for i, panel in enumerate(flat, 1):
        panel["id"] = i
    for ann in data.get("annotations", {}).get("list", []):
        if "expr" in ann:
            ann.update(annotations.fields(ann["name"]))
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, build in BUILDERS.items():
        path = out_dir / name
        path.write_text(render(build))
        paths.append(path)
    return paths


def drift(out_dir: Path = OUT_DIR) -> list[str]:
    """Names of committed JSON files that differ from what the source renders."""
    return [name for name, build in BUILDERS.items()
            if not (out_dir / name).is_file() or (out_dir / name).read_text() != render(build)]
