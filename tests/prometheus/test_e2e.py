"""End to end: simulated boards -> real agents -> Prometheus -> Alertmanager -> webhook.

The rules are the generator's output with every ``for:`` shortened to 3s and every
look-back window divided by 120 (a 10m leak window is 5s); Prometheus scrapes every
second; Alertmanager runs the committed config with short group timings and its
receiver pointed at a webhook server inside the test. Scenarios: DDR saturation, MMZ
exhausted, a stepwise MMZ leak across app restarts, a reboot, and a board that dies with
a critical alert firing (it must hold until BoardDown).
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import pytest
import yaml
from support.paths import REPO
from support.prom import start_alertmanager, start_prometheus

from boardfleet.rules import load_thresholds, shortened, write

PROM = REPO / "prometheus"
SCENARIOS = ("idle", "ddr-saturation", "mmz-leak", "exhausted-dies", "restart-leak",
             "reboot")
IDLE, DDR, LEAK, DIES, RESTARTS, REBOOT = ("sim-%02d-%s" % (i + 1, s)
                                           for i, s in enumerate(SCENARIOS))
EXPECTED = {("BoardDDRBandwidthHigh", DDR), ("BoardMMZExhausted", LEAK), ("BoardDown", DIES),
            ("BoardMMZExhausted", DIES), ("BoardMMZFillingUp", RESTARTS),
            ("BoardRebooted", REBOOT)}
DEADLINE = 80.0


class Receiver(ThreadingHTTPServer):
    """Records Alertmanager webhook posts; serves HTTP SD target groups on GET /sd."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.alerts: List[Dict[str, Any]] = []
        self.first: Dict[Tuple[str, str], float] = {}  # monotonic time of the first firing
        self.sd: List[Dict[str, Any]] = []
        self.lock = threading.Lock()

    def firing(self) -> Set[Tuple[str, str]]:
        with self.lock:
            return {(a["labels"]["alertname"], a["labels"].get("board", ""))
                    for a in self.alerts if a["status"] == "firing"}

    def statuses(self, alertname: str, board: str) -> List[str]:
        """``firing``/``resolved`` of each notification of one alert, in arrival order."""
        with self.lock:
            return [a["status"] for a in self.alerts
                    if a["labels"]["alertname"] == alertname and a["labels"]["board"] == board]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.alerts.extend(body["alerts"])
            for a in body["alerts"]:
                if a["status"] == "firing":
                    key = (a["labels"]["alertname"], a["labels"].get("board", ""))
                    self.server.first.setdefault(key, time.monotonic())
        self._reply(b"{}")

    def do_GET(self) -> None:
        with self.server.lock:
            self._reply(json.dumps(self.server.sd).encode())

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver():
    srv = Receiver()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def simulator(tmp_path: Path):
    """`boardfleet simulate` with agents, in its own process group; yields the targets."""
    targets = tmp_path / "sim-targets.yml"
    cmd = [sys.executable, "-c", "import sys; from boardfleet.cli import main; "
           "sys.exit(main(sys.argv[1:]))", "simulate", "--boards", str(len(SCENARIOS)),
           "--scenario", ",".join(SCENARIOS), "--ramp", "12",
           "--period", "0.5", "--duration", str(DEADLINE + 30), "--out", str(tmp_path / "sim"),
           "--agents", "--targets", str(targets)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(100):
            if targets.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert targets.exists(), "simulator wrote no targets (exit %s)" % proc.poll()
        yield yaml.safe_load(targets.read_text())
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
        # Agents are in the simulator's process group: nothing may outlive the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def prometheus_config(rules: List[Path], file_sd: Path, sd_url: str, am: str) -> Dict:
    """The committed prometheus.yml with 1s intervals, test SD sources and Alertmanager."""
    cfg = yaml.safe_load((PROM / "prometheus.yml").read_text())
    cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    cfg["scrape_configs"] = [j for j in cfg["scrape_configs"]
                             if j["job_name"] == "boardfleet-agent"]
    job = cfg["scrape_configs"][0]
    job["file_sd_configs"] = [{"files": [str(file_sd)], "refresh_interval": "1s"}]
    job["http_sd_configs"] = [{"url": sd_url, "refresh_interval": "1s"}]
    cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [am]}]}]}
    return cfg


def alertmanager_config(webhook: str) -> Dict:
    """The committed alertmanager.yml with short group timings and the test's webhook."""
    cfg = yaml.safe_load((PROM / "alertmanager.yml").read_text())
    for route in [cfg["route"], *cfg["route"].get("routes", [])]:
        route.update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    cfg["receivers"][0]["webhook_configs"][0]["url"] = webhook
    return cfg


@pytest.mark.slow
def test_alerts_reach_the_webhook(tmp_path: Path, receiver: Receiver, simulator) -> None:
    started = time.monotonic()
    rules = write(shortened(load_thresholds(PROM / "thresholds.yml"), "3s", scale=120),
                  tmp_path / "rules")
    # The idle board is discovered over HTTP SD, the others from a file SD file, and
    # the idle board's agent once more as a target group without any labels.
    receiver.sd = [g for g in simulator if g["labels"]["board"] == IDLE]
    unlabelled = receiver.sd[0]["targets"][0]
    file_sd = tmp_path / "targets.yml"
    file_sd.write_text(yaml.safe_dump([g for g in simulator if g["labels"]["board"] != IDLE]
                                      + [{"targets": [unlabelled], "labels": {}}]))
    base = "http://127.0.0.1:%d" % receiver.server_address[1]
    with start_alertmanager(alertmanager_config(base + "/alerts")) as am, \
            start_prometheus(prometheus_config(list(rules.values()), file_sd, base + "/sd",
                                               am.url.split("//")[1]),
                             rule_files=list(rules.values())) as prom:
        held = False  # the dead board's MMZ alert was firing when BoardDown fired
        while time.monotonic() - started < DEADLINE and not receiver.firing() >= EXPECTED:
            firing = {(a["labels"]["alertname"], a["labels"].get("board"))
                      for a in prom.alerts() if a["state"] == "firing"}
            if ("BoardDown", DIES) in firing:
                held = held or ("BoardMMZExhausted", DIES) in firing
            time.sleep(0.5)
        got = receiver.firing()
        for key in sorted(EXPECTED):  # shown with -s: time to the webhook, not asserted
            print("%-24s %-26s %5.1fs" % (*key, receiver.first.get(key, started) - started))
        boots = prom.query('board_boot_time_seconds{board="%s"}[5m]' % REBOOT)
        assert got >= EXPECTED, "missing %s; got %s\n%s\nboot times of %s: %s" % (
            EXPECTED - got, got, prom.alerts(), REBOOT, boots)
        idle = [a["labels"] for a in receiver.alerts
                if a["labels"].get("board") in (IDLE, unlabelled)]
        assert not idle, "idle board alerted: %s" % idle
        idle_up = prom.query('up{board="%s"}' % IDLE)
        assert [r["value"][1] for r in idle_up] == ["1"], "idle board not scraped via HTTP SD"
        # A target without a board label is kept, with its address as board.
        assert [r["value"][1] for r in prom.query('up{board="%s"}' % unlabelled)] == ["1"]
        assert prom.query('board:board_ddr_utilization_ratio:max1m{board="%s"} > 0.4' % DDR)
        # The dying board: its critical alert was never sent as resolved before BoardDown
        # fired, and was still firing in Prometheus when BoardDown began.
        assert held, "BoardMMZExhausted of %s had resolved before BoardDown fired" % DIES
        mmz = receiver.statuses("BoardMMZExhausted", DIES)
        assert "resolved" not in mmz[:mmz.index("firing") + 1] if "firing" in mmz else False
        assert prom.query('ALERTS{alertname="BoardMMZFillingUp", board="%s", speed="fast"}'
                          % RESTARTS), "the stepwise leak fired on the wrong windows"
        dies = next(g["targets"][0] for g in simulator if g["labels"]["board"] == DIES)
        _assert_inhibited_by_board_down(am.url, dies)
    assert time.monotonic() - started < 120


def _assert_inhibited_by_board_down(am_url: str, instance: str) -> None:
    """Any other alert for the dead board (same board and instance) is muted by the
    committed inhibit rule; the same board name on another instance is not."""
    alert = [{"labels": {"alertname": "BoardTemperatureHigh", "board": DIES,
                         "instance": instance, "severity": "warning"}},
             {"labels": {"alertname": "BoardTemperatureHigh", "board": DIES,
                         "instance": "elsewhere:9776", "severity": "warning"}}]
    req = urllib.request.Request(am_url + "/api/v2/alerts", data=json.dumps(alert).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=5).close()
    states: Dict[str, Any] = {}
    for _ in range(20):
        with urllib.request.urlopen(am_url + "/api/v2/alerts?filter=alertname%3D"
                                    "%22BoardTemperatureHigh%22", timeout=5) as r:
            found = json.loads(r.read())
        states = {a["labels"]["instance"]: a["status"] for a in found}
        if states.get(instance, {}).get("state") == "suppressed":
            break
        time.sleep(0.25)
    assert states[instance]["state"] == "suppressed", states
    assert states[instance]["inhibitedBy"], states
    assert states["elsewhere:9776"]["state"] == "active", states
