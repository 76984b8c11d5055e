"""Every panel's PromQL against a real Prometheus fed by real agents on the fixture boards.

One agent per fixture sysroot (file SD labels board/platform), two boards of the
simulator (live HiSilicon values, MMZ filling up, DDR saturated), the repository's
recording and alert rules (evaluated every second, ``for:`` shortened so alerts fire),
and StatsD inference timings and model-load events sent to two fixture boards. A panel
must return series for every board that exports the raw metrics its query reads (range
panels as range queries, fleet-wide stats at least one value), and every panel must be
fed by at least one fixture board unless it reads only a metric another issue adds.
"""

import math
import re
import socket
import threading
import time
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List, Set

import pytest
import yaml
from grafana_panels import DASHBOARDS, RULE_SOURCES, Target, files, load, panels, targets
from support.agent import served_agent
from support.net import free_port
from support.paths import BOARDS, FIXTURES
from support.prom import Prometheus, start_prometheus

from boardfleet import rules
from boardfleet.dashboards.common import (
    FILTER,
    SOAK_ALL,
    SOAK_SCOPE,
    THRESHOLDS_FILE,
    load_thresholds,
)
from boardfleet.simulator.fleet import SimFleet
from boardfleet_agent.platform import detect
from boardfleet_agent.source import LocalSource

TARGETS = targets()
LATENCY_BOARDS = ("x5", "ss928")
SIM_SCENARIOS = ("mmz-leak", "ddr-saturation")
SIM = ("sim-01-mmz-leak", "sim-02-ddr-saturation")
DEADLINE = 120.0  # bounds the wait; it ends as soon as every panel is fed
WINDOW = 30.0  # seconds of a range query
# A soak run as the fleet service exports it (``boardfleet_soak_active``, issue 16),
# served as a static page: two boards in run "run-1".
SOAK_RUN = "run-1"
SOAK_BOARDS = ("x5", "sim-01-mmz-leak")
# Metrics no fixture board serves yet: the agentless probe (the fleet service's /probe,
# tested in tests/agentless), names agreed with issue 14, the log tail (needs a
# configured log file) and filesystems (the fixtures mount no storage filesystem).
ELSEWHERE = {"board_probe_success", "board_ddr_frequency_ratio",
             "board_collector_skipped_lines_total", "board_inference_fps",
             "board_inference_average_latency_seconds", "board_inference_frames_total",
             "board_filesystem_available_bytes", "board_filesystem_size_bytes",
             # The log tail's own figures (the fed agents tail no app log), and the model
             # load memory, taken from background samples up to one collector interval
             # (15 s) after the load: tests/inference/test_inference_modelload.py.
             "board_inference_log_lag_bytes", "board_inference_log_skipped_bytes_total",
             "board_model_memory_increase_bytes"}


@contextmanager
def _fleet_service_metrics() -> Iterator[str]:
    """host:port of a page serving the soak family, as the fleet service's /metrics."""
    body = "".join('boardfleet_soak_active{soak="%s",board="%s"} 1\n' % (SOAK_RUN, b)
                   for b in SOAK_BOARDS).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _fast_rules(tmp: Path) -> list:
    """The repository's rules with every group evaluated each second and ``for: 1s``."""
    fast = rules.shortened(rules.load_thresholds(THRESHOLDS_FILE), "1s")
    out = []
    for name, text in rules.render(fast).items():
        (tmp / name).write_text(text)
        out.append(tmp / name)
    return out


def _send_timings(ports: Dict[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, port in enumerate(ports.values()):
            lines = ["inference:%d|ms|#model:yolov5" % (8 + i), "inference:31|ms|#model:resnet",
                     "model_load_begin:1|c|#model:yolov5,stage:first,pid:1234",
                     "model_load:850|ms|#model:yolov5,stage:first,pid:1234"]
            s.sendto("\n".join(lines).encode(), ("127.0.0.1", port))


def _exporters(prom: Prometheus) -> Dict[str, Set[str]]:
    """Raw metric name -> boards that export it (as scraped); ALERTS -> boards firing."""
    out: Dict[str, Set[str]] = {}
    for r in prom.query('count by (__name__, board) '
                        '({board!="", __name__=~"board_.*|boardfleet_.*|up"})'):
        out.setdefault(r["metric"]["__name__"], set()).add(r["metric"]["board"])
    for r in prom.query('count by (board) (ALERTS{alertstate="firing", board!=""})'):
        out.setdefault("ALERTS", set()).add(r["metric"]["board"])
    return out


def _run(prom: Prometheus, t: Target) -> List[Dict]:
    """The target's result: an instant query, or a range query over the last WINDOW s."""
    if t.instant:
        return prom.query(t.promql())
    now = time.time()
    body = prom.get("/api/v1/query_range", query=t.promql(), start="%.3f" % (now - WINDOW),
                    end="%.3f" % now, step="2")
    assert body.get("status") == "success", body
    return body["data"]["result"]


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
    return {r["metric"].get("board", "") for r in _run(prom, t)}


def _satisfied(prom: Prometheus, t: Target, exporters: Dict[str, Set[str]]) -> bool:
    expected = expected_boards(t, exporters)
    got = _result_boards(prom, t)
    if expected and got == {""}:  # a fleet-wide figure (count, sum): one value
        return True
    return expected <= got


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
                  "scrape_configs": [
                      {"job_name": "boardfleet-agent", "honor_labels": True, "file_sd_configs": [
                          {"files": [str(tmp / "targets.yml"), str(tmp / "sim.yml")]}]},
                      {"job_name": "boardfleet-fleet", "honor_labels": True, "static_configs": [
                          {"targets": [stack.enter_context(_fleet_service_metrics())]}]}]}
        prom = stack.enter_context(start_prometheus(config, rule_files=_fast_rules(tmp)))
        deadline = time.monotonic() + DEADLINE
        while True:  # bounded by DEADLINE
            sim.tick()
            _send_timings(statsd)
            exporters = _exporters(prom)
            missing = [t for t in TARGETS if not _satisfied(prom, t, exporters)]
            # The alert panels need an alert firing, which takes longer than a scrape.
            if (not missing and "ALERTS" in exporters
                    and len(exporters.get("up", ())) == len(BOARDS) + len(SIM)) \
                    or time.monotonic() > deadline:
                break
            time.sleep(1)
        yield prom, exporters


def test_every_fixture_board_is_scraped(fed: tuple) -> None:
    prom, _ = fed
    up = {r["metric"]["board"]: r["value"][1] for r in prom.query('up{board!=""}')}
    assert up == dict.fromkeys((*BOARDS, *SIM), "1")


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
def test_panel_returns_its_boards(fed: tuple, target: Target) -> None:
    prom, exporters = fed
    expected = expected_boards(target, exporters)
    if not expected and target.metrics() <= ELSEWHERE | {"up"}:
        _run(prom, target)  # valid PromQL that Prometheus evaluates; fed after the merge
        return
    assert expected, "no fixture board feeds %s: %s" % (target.id, target.promql())
    got = _result_boards(prom, target)
    if got == {""}:
        assert _run(prom, target), target.id
        return
    assert expected <= got, "%s: missing boards %s" % (target.id, sorted(expected - got))


def _column(dashboard: str, panel: str, name: str) -> Target:
    """The target behind a table column (``organize`` renames ``Value #<ref>``)."""
    p = next(p for p in panels(load(DASHBOARDS / dashboard)) if p["title"] == panel)
    renames = next(t["options"]["renameByName"] for t in p["transformations"]
                   if t["id"] == "organize")
    ref = next(k.removeprefix("Value #") for k, v in renames.items() if v == name)
    return next(t for t in TARGETS
                if (t.dashboard, t.panel, t.ref) == (dashboard, panel, ref))


def _values(prom: Prometheus, t: Target) -> Dict[str, List[float]]:
    """Board -> every value of the target's result (range results flattened)."""
    out: Dict[str, List[float]] = {}
    for r in _run(prom, t):
        points = r.get("values") or [r["value"]]
        out.setdefault(r["metric"].get("board", ""), []).extend(float(v) for _, v in points)
    return out


def test_hardware_panels_follow_the_hardware(fed: tuple) -> None:
    """MMZ panels show HiSilicon boards only, ION panels Horizon/Snapdragon, and so on."""
    prom, _ = fed
    platform = {b: detect(LocalSource(str(FIXTURES / b))) for b in BOARDS}
    by_panel = {(t.dashboard, t.panel, t.ref): t for t in TARGETS}
    hisi = {b for b in BOARDS if platform[b] == "hisi"} | set(SIM)
    mmz = by_panel[("board-detail.json", "MMZ used / size per zone", "A")]
    assert _result_boards(prom, mmz) == hisi
    ion = by_panel[("board-detail.json", "ION / HBMEM heaps", "A")]
    assert _result_boards(prom, ion) == {b for b in BOARDS if platform[b] == "horizon"}
    dmabuf = by_panel[("board-detail.json", "DMA-BUF by exporter", "A")]
    assert _result_boards(prom, dmabuf) == {b for b in BOARDS if platform[b] == "snapdragon"}
    latency = by_panel[("board-detail.json", "Latency p50 / p99 per model, beside DDR", "B")]
    assert _result_boards(prom, latency) == {*LATENCY_BOARDS, *SIM}  # the simulator's too


def test_fleet_table_states_and_reasons(fed: tuple) -> None:
    prom, _ = fed
    table = "fleet-overview.json", "Boards: state and reason"
    up = _values(prom, _column(*table, "Up"))
    assert up == {b: [1.0] for b in (*BOARDS, *SIM)}
    assert set(_values(prom, _column(*table, "Alerts firing"))) == {*BOARDS, *SIM}
    peak = _values(prom, _column(*table, "DDR"))
    assert peak["sim-02-ddr-saturation"][0] > load_thresholds()["ddr_utilization_ratio"]
    used = _values(prom, _column(*table, "Accel. memory used"))
    assert {"hi3516ev200", "ss928", "x5", "qcs6490", *SIM} <= set(used)  # MMZ, ION, DMA-BUF
    assert all(0 <= v <= 1 for vs in used.values() for v in vs)
    leak = _values(prom, _column(*table, "Leak slope"))
    assert "hi3516ev200" in leak  # MMZ zones stand in for the missing owner PIDs
    assert leak["sim-01-mmz-leak"][0] > 0


def test_cpu_stays_between_0_and_1(fed: tuple) -> None:
    """The simulator's idle counter runs backwards, the fixtures' never moves: every CPU
    figure is still a number in 0..1 or NaN (no CPU time elapsed), never -4700 %."""
    prom, _ = fed
    cpu = [t for t in TARGETS if "board_cpu_seconds_total" in t.expr]
    assert len(cpu) >= 3
    for t in cpu:
        values = _values(prom, t)
        assert set(SIM) <= set(values), t.id
        bad = [v for vs in values.values() for v in vs if not (math.isnan(v) or 0 <= v <= 1)]
        assert bad == [], t.id


def test_variables_select_boards(fed: tuple) -> None:
    prom, _ = fed
    platforms = {r["metric"]["platform"] for r in prom.query("board_info")}
    assert platforms == {"generic", "hisi", "horizon", "snapdragon"}
    boards = {r["metric"]["board"]
              for r in prom.query(Target("", "", "", "board_info{%s}" % FILTER).promql())}
    assert boards == {*BOARDS, *SIM}
    scope = SOAK_SCOPE.replace('"$platform"', '".*"').replace('"$rack"', '".*"')
    scope = scope.replace('"$owner"', '".*"')
    everyone = {r["metric"]["board"] for r in prom.query(scope.replace("$soak", SOAK_ALL))}
    assert everyone == {*BOARDS, *SIM}  # no soak run selected: every board
    assert prom.query(scope.replace("$soak", "no-such-run")) == []
    in_run = {r["metric"]["board"] for r in prom.query(scope.replace("$soak", SOAK_RUN))}
    assert in_run == set(SOAK_BOARDS)
    models = {r["metric"]["model"] for r in prom.query(
        'board_inference_latency_seconds_bucket{board=~".+"}')}
    assert {"yolov5", "resnet"} <= models  # the heatmap repeats per model


def test_alert_annotations_render_real_text(fed: tuple) -> None:
    """Rendered as Grafana does (a label the series lacks prints its bare name): every
    placeholder of a firing alert's text is one of its labels; something fires."""
    prom, _ = fed
    fired = 0
    for path in files():
        for ann in load(path)["annotations"]["list"]:
            result = prom.query(Target(path.name, "annotation", "", ann["expr"]).promql())
            for r in result:
                placeholders = set(re.findall(r"\{\{(\w+)\}\}", ann["textFormat"]))
                assert placeholders <= set(r["metric"]), (ann["name"], r["metric"])
            fired += bool(result) and "ALERTS" in ann["expr"]
    assert fired
