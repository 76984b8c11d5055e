"""The scale-out topology from Debian's binaries (victoria-metrics, vmagent, vmalert).

One module-scoped fleet: a virtual fleet (one process, real agent pages of three
platforms) plus simulated HiSilicon boards with real agents (DDR saturated, MMZ
leaking), scraped every second by three topologies side by side:

* 2 vmagent shards, replication 1 -> VictoriaMetrics A, with vmalert evaluating the
  generated rules (``for:`` shortened) into a real Alertmanager and a webhook;
* 3 vmagent shards, replication 2 -> VictoriaMetrics B (deduplication on read);
* Prometheus with the same rules and ``remote_write`` -> VictoriaMetrics C, where every
  dashboard query must answer as Prometheus does over the same samples, and the soak
  report must judge every board alike.
"""

import json
import math
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set

import pytest
import yaml
from grafana.grafana_panels import targets
from support.net import free_port, wait_http
from support.paths import FIXTURES, REPO
from support.process import terminate
from support.prom import start_alertmanager, start_prometheus

from boardfleet.rules import load_thresholds, render, shortened
from boardfleet.scaleout import Topology, VMPorts, vmagent_config, vmalert_rules, with_remote_write
from boardfleet.simulator.fleet import SimFleet
from boardfleet.simulator.virtual import VirtualFleet, templates
from boardfleet.soak.criteria import load as load_criteria
from boardfleet.soak.report import Window, build

VIRTUAL = 24
SIM_SCENARIOS = ["ddr-saturation", "mmz-leak"]
DDR_BOARD = "sim-01-ddr-saturation"
DEADLINE = 45.0
ALERT = "BoardDDRBandwidthHigh"
# Contract alerts the simulated boards raise (as in tests/prometheus/test_e2e.py).
EXPECTED = {(ALERT, DDR_BOARD), ("BoardMMZExhausted", "sim-02-mmz-leak")}
RANGE = re.compile(r"\[[^\]]+\]")  # a range selector: the query looks back over a window
FIRING = 'ALERTS{alertname="%s", alertstate="firing"}' % ALERT


class Webhook(ThreadingHTTPServer):
    """Alertmanager's receiver: keeps every alert it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.alerts: List[Dict[str, Any]] = []

    def firing(self) -> Set[tuple]:
        return {(a["labels"]["alertname"], a["labels"].get("board", ""))
                for a in list(self.alerts) if a["status"] == "firing"}


class _Hook(BaseHTTPRequestHandler):
    server: Webhook

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.alerts.extend(body["alerts"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class VM:
    """A VictoriaMetrics process's Prometheus API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: str) -> Any:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=10) as r:
            return json.loads(r.read().decode())

    def query(self, expr: str, time: float | None = None) -> List[Dict[str, Any]]:
        params = {"query": expr, **({"time": "%.3f" % time} if time is not None else {})}
        body = self.get("/api/v1/query", **params)
        assert body.get("status") == "success", (expr, body)
        return body["data"]["result"]


@contextmanager
def _run(argv: List[str], log: Path, health: str) -> Iterator[subprocess.Popen]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=log.parent)
    try:
        try:
            wait_http(health, timeout=30)
        except TimeoutError as e:
            raise RuntimeError("%s: %s\n%s" % (argv[0], e, log.read_text()[-2000:])) from None
        yield proc
    finally:
        terminate(proc, 10)


def _topology(stack: ExitStack, tmp: Path, name: str, shards: int, replication: int,
              scrape: Dict[str, Any]) -> Topology:
    """VictoriaMetrics and ``shards`` vmagents from the product's argv, started."""
    state = tmp / name
    state.mkdir()
    topo = Topology(state, shards, replication, sd_interval="1s",
                    ports=VMPorts(free_port(), 0, free_port()),
                    shard_ports=[free_port() for _ in range(shards)])
    stack.enter_context(_run(topo.victoria_metrics(
        shutil.which("victoria-metrics") or "victoria-metrics", "1s",
        ["-search.disableCache"]),
        state / "vm.log", topo.url + "/health"))
    config = state / "scrape.yml"
    config.write_text(yaml.safe_dump(vmagent_config(scrape)))
    for i in range(shards):
        stack.enter_context(_run(topo.vmagent("vmagent", i, config),
                                 state / ("vmagent-%d.log" % i), topo.shard_url(i) + "/health"))
    return topo


def _scraped_by(topo: Topology) -> Dict[str, int]:
    """Board -> how many shards scrape it (each shard's active targets)."""
    counts: Dict[str, int] = {}
    for i in range(topo.shards):
        with urllib.request.urlopen(topo.shard_url(i) + "/api/v1/targets", timeout=10) as r:
            body = json.loads(r.read())
        for t in body["data"]["activeTargets"]:
            board = t["labels"].get("board", "")
            counts[board] = counts.get(board, 0) + 1
    return counts


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("scaleout")
    with ExitStack() as stack:
        vf = stack.enter_context(VirtualFleet(VIRTUAL, templates(
            FIXTURES, ("hi3516ev200", "x5", "qcs6490"))))
        sim = SimFleet(tmp / "sim", len(SIM_SCENARIOS), SIM_SCENARIOS, ramp=12)
        stack.callback(sim.stop)
        sim.start_agents(tmp / "sim.yml")
        (tmp / "virtual.yml").write_text(yaml.safe_dump(vf.file_sd()))
        boards = set(vf.boards) | {b.name for b in sim.boards}
        scrape = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                             "evaluation_interval": "1s"},
                  "scrape_configs": [{"job_name": "boardfleet-agent", "honor_labels": True,
                                      "file_sd_configs": [{"files": [
                                          str(tmp / "virtual.yml"), str(tmp / "sim.yml")]}]}]}
        rules_dir = tmp / "rules"
        rules_dir.mkdir()
        rule_files = []
        for name, text in render(shortened(load_thresholds(REPO / "prometheus" /
                                                           "thresholds.yml"),
                                           "2s", scale=120)).items():
            (rules_dir / name).write_text(text)
            rule_files.append(rules_dir / name)
        hook = Webhook()
        threading.Thread(target=hook.serve_forever, daemon=True).start()
        stack.callback(hook.server_close)
        stack.callback(hook.shutdown)
        am = stack.enter_context(start_alertmanager({
            "route": {"receiver": "hook", "group_wait": "1s", "group_interval": "1s",
                      "repeat_interval": "1h"},
            "receivers": [{"name": "hook", "webhook_configs": [
                {"url": "http://127.0.0.1:%d/" % hook.server_address[1]}]}]}))
        single = _topology(stack, tmp, "single", 2, 1, scrape)
        stack.enter_context(_run(
            single.vmalert("vmalert", vmalert_rules(rule_files, tmp / "vmalert-rules"),
                           am.url, "1s"),
            tmp / "single" / "vmalert.log", single.vmalert_url + "/health"))
        replicated = _topology(stack, tmp, "replicated", 3, 2, scrape)
        remote = _topology(stack, tmp, "remote", 0, 1, scrape)
        prom = stack.enter_context(start_prometheus(
            with_remote_write(scrape, remote.write_url), rule_files=rule_files))
        started = time.monotonic()
        vm_a, vm_c = VM(single.url), VM(remote.url)
        while time.monotonic() - started < DEADLINE:  # bounded
            sim.tick()
            ready = (len(vm_a.query("up == 1")) == len(boards)
                     and hook.firing() >= EXPECTED
                     and vm_a.query(FIRING)
                     and len(vm_c.query("up == 1")) == len(boards)
                     and time.monotonic() - started > 15)
            if ready:
                break
            time.sleep(1)
        yield {"boards": boards, "started": time.time() - (time.monotonic() - started),
               "single": single, "replicated": replicated, "prom": prom,
               "vm_a": vm_a, "vm_b": VM(replicated.url), "vm_c": vm_c, "hook": hook}


def test_each_board_is_scraped_by_exactly_one_shard(fleet: Dict[str, Any]) -> None:
    assert _scraped_by(fleet["single"]) == dict.fromkeys(fleet["boards"], 1)
    up = {r["metric"]["board"]: r["value"][1] for r in fleet["vm_a"].query("up")}
    assert up == dict.fromkeys(fleet["boards"], "1")


def test_replication_two_scrapes_twice_and_reads_once(fleet: Dict[str, Any]) -> None:
    assert _scraped_by(fleet["replicated"]) == dict.fromkeys(fleet["boards"], 2)
    vm = fleet["vm_b"]
    # One series per board, and one sample per scrape interval (1s) after deduplication:
    # without it, two shards' samples would give about twice as many.
    assert sorted(r["metric"]["board"] for r in vm.query("up")) == sorted(fleet["boards"])
    samples = vm.query("count_over_time(up[10s])")
    assert len(samples) == len(fleet["boards"])
    assert max(float(r["value"][1]) for r in samples) <= 11, samples


def test_contract_alerts_fire_through_vmalert(fleet: Dict[str, Any]) -> None:
    firing = fleet["hook"].firing()
    assert firing >= EXPECTED, firing
    # Only the saturated board: the virtual boards (fixture values) stay quiet.
    assert not {b for name, b in firing if name == ALERT} - {DDR_BOARD}
    # vmalert wrote its alert state back (ALERTS, as Grafana's alert panels read it).
    assert {r["metric"]["board"] for r in fleet["vm_a"].query(FIRING)} == {DDR_BOARD}


def test_dashboard_queries_answer_alike(fleet: Dict[str, Any]) -> None:
    """Over Prometheus's own samples (remote-written), VictoriaMetrics answers every
    panel query with the same series; values are equal unless the query looks back over
    a range (``rate``, ``changes``, ``*_over_time``), where MetricsQL reads the sample
    before the window and does not extrapolate (docs/scaleout.md lists the panels)."""
    prom, vm = fleet["prom"], fleet["vm_c"]
    at = time.time() - 5
    diffs = []
    exact = [t for t in targets() if not RANGE.search(t.promql())]
    assert len(exact) > len(targets()) / 3, "most panels compared only by series"
    for t in targets():
        got_p = _result(prom.query(t.promql(), time=at))
        got_v = _result(vm.query(t.promql(), time=at))
        if set(got_p) != set(got_v):
            diffs.append("%s: series differ: prometheus-only %s, vm-only %s" % (
                t.id, sorted(set(got_p) - set(got_v))[:3], sorted(set(got_v) - set(got_p))[:3]))
            continue
        for k in got_p if t in exact else ():
            if not _close(got_p[k], got_v[k]):
                diffs.append("%s %s: %s vs %s" % (t.id, k, got_p[k], got_v[k]))
    assert not diffs, "\n".join(diffs)


def _result(result: List[Dict[str, Any]]) -> Dict[str, float]:
    return {json.dumps({k: v for k, v in r["metric"].items() if k != "__name__"},
                       sort_keys=True): float(r["value"][1]) for r in result}


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    # VictoriaMetrics keeps about 12 significant decimal digits: a Unix timestamp
    # (1.7e9 s) loses microseconds, which ``time() - ..._timestamp_seconds`` shows.
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-5)


def test_soak_report_judges_alike(fleet: Dict[str, Any]) -> None:
    """The soak report pointed at VictoriaMetrics gives every board the verdict and
    reasons it gives from Prometheus, its queries all answered."""
    boards = sorted(b for b in fleet["boards"] if b.startswith("sim-"))[:2] + \
        sorted(b for b in fleet["boards"] if b.startswith("vf-"))[:3]
    w = Window("scaleout", fleet["started"], time.time() - 5, boards)
    got = {}
    for name, url in (("prometheus", fleet["prom"].url), ("victoriametrics",
                                                          fleet["vm_c"].url)):
        r = build(w, url, load_criteria(), step=1)
        assert not r.problems, (name, r.problems)
        got[name] = {b.board: (b.verdict, b.reasons) for b in r.boards}
    assert any(r.startswith("DDR above") for r in got["prometheus"][DDR_BOARD][1])
    assert got["victoriametrics"] == got["prometheus"]
