"""The generated dashboards: no drift from the Python source, and a sound JSON model."""

import json

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from grafana_panels import DASHBOARDS, files, load, panels
from support.paths import REPO

from boardfleet.dashboards import BUILDERS, drift, render
from boardfleet.dashboards.common import BOARD_UID, load_thresholds

PROVISIONING = REPO / "grafana" / "provisioning"
UNITS = {"bytes", "percentunit", "s", "Bps", "celsius", "hertz", "bool", "none"}


def test_committed_json_matches_the_source() -> None:
    assert drift() == [], "run: python -m boardfleet.dashboards"
    assert sorted(p.name for p in files()) == sorted(BUILDERS)


def test_drift_is_detected(tmp_path) -> None:
    for name, build in BUILDERS.items():
        (tmp_path / name).write_text(render(build))
    first = sorted(BUILDERS)[0]
    (tmp_path / first).write_text((tmp_path / first).read_text().replace("bytes", "decbytes"))
    assert drift(tmp_path) == [first]


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
        assert p["datasource"] == {"type": "prometheus", "uid": uid}, p["title"]
        assert p["targets"] and all(t["datasource"]["uid"] == uid for t in p["targets"])
    for ann in data["annotations"]["list"]:
        assert ann["datasource"]["uid"] == uid and "ALERTS" in ann["expr"]
    for var in data.get("templating", {}).get("list", []):
        assert var["datasource"]["uid"] == uid


def test_fleet_table_colours_against_the_alert_thresholds() -> None:
    table = load(DASHBOARDS / "fleet-overview.json")["panels"][0]
    steps = {o["matcher"]["options"]: p["value"]["steps"]
             for o in table["fieldConfig"]["overrides"] for p in o["properties"]
             if p["id"] == "thresholds"}
    t = load_thresholds()
    assert steps["DDR"][1] == {"color": "red", "value": t["ddr_utilization_ratio"]}
    assert steps["MMZ free"][1] == {"color": "green", "value": t["mmz_free_ratio"]}
    assert steps["Temperature"][1]["value"] == t["temperature_celsius"]
    assert steps["Latency p99"][1]["value"] == t["inference_latency_p99_seconds"]
    links = [p["value"] for o in table["fieldConfig"]["overrides"] for p in o["properties"]
             if p["id"] == "links"]
    assert links and links[0][0]["url"].startswith("/d/%s/" % BOARD_UID)
    assert "var-board=${__value.raw}" in links[0][0]["url"]


def test_provisioning_loads_the_dashboards_directory() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "boardfleet.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    assert provider["providers"][0]["options"]["path"].endswith("/var/lib/grafana/dashboards}")
