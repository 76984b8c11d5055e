"""The generated dashboards: no drift from the Python source, and a sound JSON model.

Structure only; tests/grafana/test_panel_queries.py runs every query against Prometheus.
"""

import json
import re
import subprocess
import sys
from itertools import combinations
from pathlib import Path
from typing import Dict, List

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from grafana_panels import (
    BUILTIN,
    DASHBOARDS,
    Target,
    documented_metrics,
    files,
    load,
    panels,
    targets,
)
from support.paths import REPO
from support.promtool import promtool

from boardfleet.dashboards import BUILDERS, drift, render
from boardfleet.dashboards.annotations import alert_texts
from boardfleet.dashboards.common import BOARD_UID, MIB, MIB_PER_HOUR, load_thresholds

PROVISIONING = REPO / "grafana" / "provisioning"
UNITS = {"bytes", "percentunit", "s", "Bps", "celsius", "hertz", "bool", "none",
         MIB_PER_HOUR, "dateTimeAsIso"}
# Variables of a Grafana template reference: $name, ${name} and ${name:format}.
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def _by_title(data: Dict) -> Dict[str, Dict]:
    return {p["title"]: p for p in panels(data)}


def test_committed_json_matches_the_source() -> None:
    assert drift() == [], "run: python -m boardfleet.dashboards"
    assert sorted(p.name for p in files()) == sorted(BUILDERS)


def test_drift_is_detected(tmp_path) -> None:
    for name, build in BUILDERS.items():
        (tmp_path / name).write_text(render(build))
    first = sorted(BUILDERS)[0]
    (tmp_path / first).write_text((tmp_path / first).read_text().replace("bytes", "decbytes"))
    assert drift(tmp_path) == [first]


def test_check_command_exits_0_when_current(tmp_path) -> None:
    r = subprocess.run([sys.executable, "-m", "boardfleet.dashboards", "--check"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("path", files(), ids=lambda p: p.name)
def test_json_round_trips_through_the_grafana_schema_model(path) -> None:
    """The SDK's Dashboard model is generated from Grafana's schema: a misspelt or unknown
    field does not survive the round trip. (Value types are not checked by the model;
    annotations carry Prometheus fields the model lacks, such as titleFormat.)"""
    data = load(path)
    again = json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))
    assert {k: v for k, v in again.items() if k != "annotations"} == \
        {k: v for k, v in data.items() if k != "annotations"}


def test_uids_are_stable_and_unique() -> None:
    uids = {p.name: load(p)["uid"] for p in files()}
    assert uids == {"board-detail.json": "boardfleet-board",
                    "fleet-overview.json": "boardfleet-fleet",
                    "soak-test.json": "boardfleet-soak"}


def _overlap(a: Dict, b: Dict) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


@pytest.mark.parametrize("path", files(), ids=lambda p: p.name)
def test_panels_stay_on_the_24_column_grid_without_overlap(path) -> None:
    """Top-level panels (open rows included) and each collapsed row's panels: inside 24
    columns, never on top of each other; a collapsed row's panels start below it."""
    data = load(path)
    groups: List[List[Dict]] = [[p for p in data["panels"]]]
    for row in data["panels"]:
        if row["type"] == "row" and row.get("collapsed"):
            assert row["panels"], row["title"]
            assert min(p["gridPos"]["y"] for p in row["panels"]) == row["gridPos"]["y"] + 1
            groups.append(row["panels"])
        elif row["type"] == "row":
            assert not row.get("panels"), "an open row holds no panels: %s" % row["title"]
    for group in groups:
        for p in group:
            g = p["gridPos"]
            assert g["x"] >= 0 and g["w"] >= 1 and g["h"] >= 1, p["title"]
            assert g["x"] + g["w"] <= 24, "%s: x=%d w=%d" % (p["title"], g["x"], g["w"])
        for a, b in combinations(group, 2):
            assert not _overlap(a["gridPos"], b["gridPos"]), (a["title"], b["title"])


def _variable_refs(data: Dict) -> Dict[str, str]:
    """Every ``$variable`` a panel, target, link, title or annotation refers to -> where."""
    refs = {}
    texts = [(p.get("title", ""), p.get("title", "")) for p in panels(data)]
    texts += [(t["expr"], p["title"]) for p in panels(data) for t in p.get("targets", [])]
    texts += [(json.dumps(p.get("fieldConfig", {})), p["title"]) for p in panels(data)]
    texts += [(p.get("repeat") or "", p["title"]) for p in panels(data) if p.get("repeat")]
    texts += [(a.get("expr", ""), a["name"]) for a in data["annotations"]["list"]]
    texts += [(v.get("query", "") if isinstance(v.get("query"), str) else
               json.dumps(v.get("query")), v["name"]) for v in data["templating"]["list"]]
    for text, where in texts:
        for name in _VAR.findall(text):
            refs.setdefault(name, where)
    for p in panels(data):
        if p.get("repeat"):
            refs.setdefault(p["repeat"], p["title"])
    return refs


@pytest.mark.parametrize("path", files(), ids=lambda p: p.name)
def test_every_variable_used_exists(path) -> None:
    data = load(path)
    defined = {v["name"] for v in data["templating"]["list"]}
    missing = {n: w for n, w in _variable_refs(data).items()
               if n not in defined and n not in BUILTIN}
    assert missing == {}


@pytest.mark.parametrize("path", files(), ids=lambda p: p.name)
def test_every_panel_has_a_unit_and_the_provisioned_datasource(path) -> None:
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "boardfleet.yml").read_text())
    uid = next(d["uid"] for d in provisioned["datasources"] if d["type"] == "prometheus")
    data = load(path)
    ids = [p["id"] for p in panels(data)]
    assert len(ids) == len(set(ids))
    for p in panels(data):
        if p["type"] == "row":
            continue
        assert p["fieldConfig"]["defaults"].get("unit") in UNITS, p["title"]
        for o in p["fieldConfig"]["overrides"]:
            for prop in o["properties"]:
                assert prop["id"] != "unit" or prop["value"] in UNITS, (p["title"], prop)
        assert p["datasource"] == {"type": "prometheus", "uid": uid}, p["title"]
        assert p["targets"] and all(t["datasource"]["uid"] == uid for t in p["targets"])
    for ann in data["annotations"]["list"]:
        assert ann["datasource"]["uid"] == uid
    for var in data.get("templating", {}).get("list", []):
        assert var["datasource"]["uid"] == uid


def test_every_documented_metric_is_on_a_panel() -> None:
    """docs/metrics.md is the contract; a metric no panel reads is one nobody sees."""
    read = set().union(*(t.metrics() for t in targets()))
    read |= {m.removesuffix("_bucket") for m in read}
    assert sorted(documented_metrics() - read) == []


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    """Every expression (variables replaced) as a recording rule through promtool's parser."""
    rules = [{"record": "dashboard:query:%d" % i, "expr": t.promql()}
             for i, t in enumerate(targets())]
    rules += [{"record": "dashboard:annotation:%d" % i,
               "expr": Target(p.name, "annotation", "", a["expr"]).promql()}
              for p in files() for i, a in enumerate(load(p)["annotations"]["list"])]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    r = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def _steps(panel: Dict, name: str | None = None) -> List[Dict]:
    if name is None:
        return panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return next(prop["value"]["steps"] for o in panel["fieldConfig"]["overrides"]
                if o["matcher"]["options"] == name for prop in o["properties"]
                if prop["id"] == "thresholds")


def test_fleet_table_colours_against_the_alert_thresholds() -> None:
    fleet = _by_title(load(DASHBOARDS / "fleet-overview.json"))
    table = fleet["Boards: state and reason"]
    t = load_thresholds()
    assert _steps(table, "DDR")[1] == {"color": "red", "value": t["ddr_utilization_ratio"]}
    assert _steps(table, "MMZ free (tightest zone)")[1] == \
        {"color": "green", "value": t["mmz_free_ratio"]}
    assert _steps(table, "MMZ largest block")[1]["value"] == t["mmz_largest_free_block_bytes"]
    assert _steps(table, "Temperature")[1]["value"] == t["temperature_celsius"]
    assert _steps(table, "Latency p99")[1]["value"] == t["inference_latency_p99_seconds"]
    assert _steps(table, "Leak slope")[1]["value"] == t["leak_bytes_per_hour"] / MIB
    assert _steps(table, "Accel. memory used")[-1]["value"] == 1 - t["mmz_free_ratio"]
    links = [prop["value"] for o in table["fieldConfig"]["overrides"]
             for prop in o["properties"] if prop["id"] == "links"]
    assert links and links[0][0]["url"].startswith("/d/%s/" % BOARD_UID)
    assert "var-board=${__data.fields.board}" in links[0][0]["url"]
    names = {t["refId"]: t["expr"] for t in table["targets"]}
    assert "board_probe_success" in " ".join(names.values())  # agentless probe counts
    assert any("ALERTS" in e for e in names.values())
    assert "alertname" in json.dumps(fleet["Why: firing alerts"]["transformations"])


def test_board_detail_draws_the_alert_lines_per_series() -> None:
    board = _by_title(load(DASHBOARDS / "board-detail.json"))
    t = load_thresholds()
    assert _steps(board["MMZ free per zone"])[1]["value"] == t["mmz_free_ratio"]
    assert _steps(board["MMZ largest free block"])[1]["value"] == \
        t["mmz_largest_free_block_bytes"]
    leak = board["Leak slope (1h)"]
    assert leak["fieldConfig"]["defaults"]["unit"] == MIB_PER_HOUR
    assert _steps(leak)[1]["value"] == t["leak_bytes_per_hour"] / MIB
    latency = board["Latency p50 / p99 per model, beside DDR"]
    assert _steps(latency)[1]["value"] == t["inference_latency_p99_seconds"]
    by_ref = {o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
              for o in latency["fieldConfig"]["overrides"]}
    # DDR carries its own 40 % line, not the latency bound; p50 draws none.
    assert by_ref["C"]["thresholds"]["steps"][1]["value"] == t["ddr_utilization_ratio"]
    assert by_ref["C"]["unit"] == "percentunit"
    assert by_ref["A"]["custom.thresholdsStyle"] == {"mode": "off"}


def test_board_detail_first_screen_and_collapsed_rows() -> None:
    data = load(DASHBOARDS / "board-detail.json")
    top = [p for p in data["panels"] if p["type"] != "row"]
    first_screen = {p["title"] for p in top if p["gridPos"]["y"] < 24}
    assert {"Identity", "Uptime", "Firing alerts", "DDR (max 1m)", "Worst p99",
            "Latency p50 / p99 per model, beside DDR", "Leak slope (1h)"} <= first_screen
    rows = [p for p in data["panels"] if p["type"] == "row"]
    assert rows and all(r["collapsed"] for r in rows)
    assert min(r["gridPos"]["y"] for r in rows) == 24  # rows start below the first screen
    heatmap = next(p for p in panels(data) if p["type"] == "heatmap")
    assert heatmap["repeat"] == "model" and 'model=~"$model"' in heatmap["targets"][0]["expr"]


def test_soak_dashboard_repeats_per_board_and_shades_runs() -> None:
    data = load(DASHBOARDS / "soak-test.json")
    assert not [p for p in panels(data) if p["type"] == "stat"]  # no stat per board
    row = next(p for p in data["panels"] if p["type"] == "row")
    assert row["repeat"] == "board" and not row["collapsed"]
    soak = next(a for a in data["annotations"]["list"] if a["name"] == "Soak runs")
    assert "boardfleet_soak_active" in soak["expr"] and soak["titleFormat"] == "Soak {{soak}}"
    exprs = " ".join(t["expr"] for p in panels(data) for t in p.get("targets", []))
    assert "deriv(board_mmz_used_bytes" in exprs      # Hi3516: zones, no owner PIDs
    assert "@ start()" in exprs and "delta(" not in exprs  # drift against the run start


@pytest.mark.parametrize("path", files(), ids=lambda p: p.name)
def test_alert_annotations_show_the_alerts_real_text(path) -> None:
    """One annotation per alert of the rules; its text is the rule's summary and only
    labels that alert carries (Grafana prints a missing label's bare name)."""
    anns = {a["name"]: a for a in load(path)["annotations"]["list"] if "ALERTS" in a["expr"]}
    texts = alert_texts()
    assert sorted(anns) == sorted(a.name for a in texts)
    for a in texts:
        ann = anns[a.name]
        assert ann["textFormat"].startswith(a.summary + ": ")
        assert "summary" not in ann["textFormat"].replace(a.summary, "")
        placeholders = set(re.findall(r"\{\{(\w+)\}\}", ann["textFormat"]))
        assert placeholders <= set(a.labels) and "board" in placeholders, a.name
        assert 'alertname="%s"' % a.alertname in ann["expr"]


def test_provisioning_loads_the_dashboards_directory() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "boardfleet.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    assert provider["providers"][0]["options"]["path"] == "${DASHBOARDS_PATH}"
