"""Every panel's PromQL against a real Prometheus fed by real agents on the fixture boards.

One agent per fixture sysroot (file SD labels board/platform), two boards of the
simulator (live HiSilicon values, MMZ filling up), the repository's recording and alert
rules (evaluated every second here), and StatsD inference timings sent to two fixture
boards. A panel must return series for every board that exports the raw metrics
its query reads, and every panel must be fed by at least one fixture board.
"""

import socket
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Dict, Iterator, Set

import pytest
import yaml
from grafana_panels import RULE_SOURCES, Target, files, load, targets
from support.agent import served_agent
from support.net import free_port
from support.paths import BOARDS, FIXTURES, REPO
from support.prom import Prometheus, start_prometheus

from boardfleet.dashboards.common import load_thresholds
from boardfleet.simulator.fleet import SimFleet
from boardfleet_agent.platform import detect
from boardfleet_agent.source import LocalSource

TARGETS = targets()
LATENCY_BOARDS = ("x5", "ss928")
SIM_SCENARIOS = ("mmz-leak", "ddr-saturation")
SIM = ("sim-01-mmz-leak", "sim-02-ddr-saturation")
DEADLINE = 60.0


def _fast_rules(tmp: Path) -> list:
    """The repository's rule files with every group evaluated each second."""
    out = []
    for path in sorted((REPO / "prometheus" / "rules").glob("*.yml")):
        rules = yaml.safe_load(path.read_text())
        for group in rules["groups"]:
            group["interval"] = "1s"
        (tmp / path.name).write_text(yaml.safe_dump(rules))
        out.append(tmp / path.name)
    return out


def _send_timings(ports: Dict[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, port in enumerate(ports.values()):
            lines = ["inference:%d|ms|#model:yolov5" % (8 + i), "inference:31|ms|#model:resnet"]
            s.sendto("\n".join(lines).encode(), ("127.0.0.1", port))


def _exporters(prom: Prometheus) -> Dict[str, Set[str]]:
    """Raw metric name -> boards that export it (as scraped)."""
    out: Dict[str, Set[str]] = {}
    for r in prom.query('count by (__name__, board) ({board!="", __name__=~"board_.*|up"})'):
        out.setdefault(r["metric"]["__name__"], set()).add(r["metric"]["board"])
    return out


def expected_boards(t: Target, exporters: Dict[str, Set[str]]) -> Set[str]:
    """Boards that export every metric of some ``or`` branch of the query."""
    boards: Set[str] = set()
    for needs in t.branches():
        if not needs:
            continue
        have = set(exporters.get("up", ()))
        for name in needs:
            have &= set().union(*(exporters.get(n, set())
                                  for n in RULE_SOURCES.get(name, {name})))
        boards |= have
    return boards


def _result_boards(prom: Prometheus, t: Target) -> Set[str]:
    return {r["metric"].get("board", "") for r in prom.query(t.promql())}


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    tmp = tmp_path_factory.mktemp("fed")
    statsd = {b: free_port() for b in LATENCY_BOARDS}
    with ExitStack() as stack:
        groups = []
        for board in BOARDS:
            args = ["--statsd-listen", "127.0.0.1:%d" % statsd[board]] if board in statsd else []
            base, _ = stack.enter_context(served_agent(str(FIXTURES / board), *args))
            groups.append({"targets": [base.removeprefix("http://")], "labels": {
                "board": board, "platform": detect(LocalSource(str(FIXTURES / board))),
                "mode": "agent"}})
        (tmp / "targets.yml").write_text(yaml.safe_dump(groups))
        sim = SimFleet(tmp / "sim", len(SIM_SCENARIOS), list(SIM_SCENARIOS), ramp=60)
        stack.callback(sim.stop)
        sim.tick()
        sim.start_agents(tmp / "sim.yml")
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "scrape_configs": [{"job_name": "boardfleet-agent", "honor_labels": True,
                                      "file_sd_configs": [
                      {"files": [str(tmp / "targets.yml"), str(tmp / "sim.yml")]}]}]}
        prom = stack.enter_context(start_prometheus(config, rule_files=_fast_rules(tmp)))
        deadline = time.monotonic() + DEADLINE
        while True:  # bounded by DEADLINE
            sim.tick()
            _send_timings(statsd)
            exporters = _exporters(prom)
            missing = [t for t in TARGETS
                       if not expected_boards(t, exporters) <= _result_boards(prom, t)]
            if (not missing and len(exporters.get("up", ())) == len(BOARDS) + len(SIM)) \
                    or time.monotonic() > deadline:
                break
            time.sleep(1)
        yield prom, exporters


def test_every_fixture_board_is_scraped(fed: tuple) -> None:
    prom, _ = fed
    up = {r["metric"]["board"]: r["value"][1] for r in prom.query("up")}
    assert up == dict.fromkeys((*BOARDS, *SIM), "1")


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
def test_panel_returns_its_boards(fed: tuple, target: Target) -> None:
    prom, exporters = fed
    expected = expected_boards(target, exporters)
    assert expected, "no fixture board feeds %s: %s" % (target.id, target.promql())
    got = _result_boards(prom, target)
    assert expected <= got, "%s: missing boards %s" % (target.id, sorted(expected - got))


def test_hardware_panels_follow_the_hardware(fed: tuple) -> None:
    """MMZ panels show HiSilicon boards only, ION panels Horizon/Snapdragon, and so on."""
    prom, _ = fed
    platform = {b: detect(LocalSource(str(FIXTURES / b))) for b in BOARDS}
    by_panel = {(t.dashboard, t.panel, t.ref): t for t in TARGETS}
    mmz = by_panel[("board-detail.json", "MMZ used / free per zone", "A")]
    assert _result_boards(prom, mmz) == {b for b in BOARDS if platform[b] == "hisi"} | set(SIM)
    latency = by_panel[("board-detail.json", "Latency p50 / p99 per model, beside DDR", "B")]
    assert _result_boards(prom, latency) == {*LATENCY_BOARDS, *SIM}  # the simulator's too
    alerts = by_panel[("fleet-overview.json", "Boards", "H")]
    assert _result_boards(prom, alerts) == {*BOARDS, *SIM}
    ddr = by_panel[("fleet-overview.json", "Boards", "B")]
    peak = {r["metric"]["board"]: float(r["value"][1]) for r in prom.query(ddr.promql())}
    assert peak["sim-02-ddr-saturation"] > load_thresholds()["ddr_utilization_ratio"]


def test_variables_and_annotations_select_boards(fed: tuple) -> None:
    prom, _ = fed
    platforms = {r["metric"]["platform"] for r in prom.query("board_info")}
    assert platforms == {"generic", "hisi", "horizon", "snapdragon"}
    boards = {r["metric"]["board"] for r in prom.query('board_info{platform=~".*"}')}
    assert boards == {*BOARDS, *SIM}
    for path in files():
        for ann in load(path)["annotations"]["list"]:
            expr = Target(path.name, "annotation", "", ann["expr"]).promql()
            assert prom.query(expr) == []  # valid PromQL; nothing fires this early
