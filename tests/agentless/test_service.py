"""End-to-end: the fleet service probes fake boards over real sshd and telnet."""

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Tuple

import pytest
import yaml
from agentless_helpers import (
    PROBE_TIMEOUT,
    TELNET_PASSWORD,
    TOKEN,
    WRONG_PASSWORD,
    agentless_job,
    wait_for,
)
from support.agent import run_once
from support.prom import Prometheus, start_prometheus
from support.promtool import check_metrics

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def http(method: str, url: str, body: object = None, token: str | None = None,
         headers: Dict[str, str] | None = None) -> Tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text: str) -> Dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def probe(fleet: Dict[str, object], target: str) -> Dict[str, float]:
    status, text = http("GET", "%s/probe?target=%s" % (fleet["base"], target))
    assert status == 200, text
    return samples(text)


def test_ssh_probe_reads_hisi_board_in_agent_vocabulary(fleet):
    text = http("GET", "%s/probe?target=hi0" % fleet["base"])[1]
    got = samples(text)
    assert got["board_probe_success"] == 1.0
    assert 0 < got["board_probe_duration_seconds"] < PROBE_TIMEOUT
    assert any(k.startswith("board_info{") and 'platform="hisi"' in k for k in got)
    # The same numbers the agent reads from the fixture's /proc/media-mem and /proc/stat.
    assert any(k.startswith("board_mmz_size_bytes{") for k in got)
    assert got['board_collector_success{collector="mmz"}'] == 1.0
    assert any(k.startswith("board_cpu_seconds_total{") for k in got)
    # Same parsers, same numbers: the agent on the same sysroot agrees on every MMZ and
    # CPU sample, and the probe adds no lint of its own.
    agent_text = run_once(str(fleet["boards"]["hi0"].sysroot))
    agent = samples(agent_text)
    shared = [k for k in agent if k.startswith(("board_mmz_", "board_cpu_seconds_total"))]
    assert shared and {k: got.get(k) for k in shared} == {k: agent[k] for k in shared}
    assert check_metrics(text) == check_metrics(agent_text)


def test_pooled_probes_reuse_one_login(fleet):
    """Counted in the board's sshd log, not timed: after the first probe, later ones log
    in no more (a login per probe is what made unpooled probes slow)."""
    log = fleet["boards"]["gen0"].root / "sshd.log"
    assert probe(fleet, "gen0")["board_probe_success"] == 1.0
    logins = log.read_text().count("Accepted publickey")
    assert logins >= 1
    for _ in range(5):
        assert probe(fleet, "gen0")["board_probe_success"] == 1.0
    assert log.read_text().count("Accepted publickey") == logins


def test_telnet_board_logs_in_and_is_probed(fleet):
    got = probe(fleet, "tel0")
    assert got["board_probe_success"] == 1.0
    assert any(k.startswith("board_mmz_size_bytes{") for k in got)
    assert got["board_load1"] >= 0
    again = probe(fleet, "tel0")  # the pooled telnet session answers a second time
    assert again["board_probe_success"] == 1.0


def test_wrong_telnet_password_fails_without_logging_it(fleet):
    assert probe(fleet, "tel1")["board_probe_success"] == 0.0
    assert probe(fleet, "tel0")["board_probe_success"] == 1.0
    log = b"".join(p.read_bytes() for p in fleet["workdir"].glob("service-*.log"))
    assert b"tel1: telnet login refused" in log
    for secret in (TELNET_PASSWORD, WRONG_PASSWORD, TOKEN):
        assert secret.encode() not in log


def test_unknown_target_is_404_and_missing_target_422(fleet):
    assert http("GET", "%s/probe?target=nope" % fleet["base"])[0] == 404
    assert http("GET", "%s/probe" % fleet["base"])[0] == 422


def test_http_sd_lists_agentless_boards_with_labels(fleet):
    status, text = http("GET", "%s/sd" % fleet["base"])
    assert status == 200
    groups = {g["targets"][0]: g["labels"] for g in json.loads(text)}
    assert set(groups) == {"hi0", "gen0", "dead0", "tel0", "tel1"}
    assert groups["hi0"] == {"board": "hi0", "platform": "auto", "mode": "agentless",
                             "lab": "ci"}
    assert json.loads(http("GET", "%s/sd?mode=agent" % fleet["base"])[1]) == []


def test_board_crud_needs_the_token_and_persists(fleet):
    base, board = fleet["base"], {"name": "new0", "host": "198.18.255.2", "mode": "agentless"}
    assert http("POST", base + "/boards", board)[0] == 401
    assert http("POST", base + "/boards", board, token="wrong")[0] == 401
    assert http("POST", base + "/boards", board, token=TOKEN)[0] == 201
    assert http("POST", base + "/boards", board, token=TOKEN)[0] == 409
    assert http("GET", base + "/boards/new0")[0] == 200
    saved = yaml.safe_load(fleet["inventory"].read_text())
    assert "new0" in [b["name"] for b in saved["boards"]]
    bad = dict(board, name="bad1", labels={"board": "x"})
    assert http("POST", base + "/boards", bad, token=TOKEN)[0] == 422
    assert http("DELETE", base + "/boards/new0")[0] == 401
    assert http("DELETE", base + "/boards/new0", token=TOKEN)[0] == 204
    assert http("DELETE", base + "/boards/new0", token=TOKEN)[0] == 404
    names = [b["name"] for b in json.loads(http("GET", base + "/boards")[1])]
    assert sorted(names) == ["dead0", "gen0", "hi0", "tel0", "tel1"]


def at_least(prom: Prometheus, n: int, expr: str) -> List[Dict[str, Any]]:
    found = prom.query(expr)
    return found if len({s["metric"]["instance"] for s in found}) >= n else []


def covering(prom: Prometheus, instances: set, expr: str) -> List[Dict[str, Any]]:
    """The query's result once it has a series for every one of ``instances``."""
    found = prom.query(expr)
    return found if instances <= {s["metric"]["instance"] for s in found} else []


def test_prometheus_scrapes_probe_and_stores_mmz(fleet):
    service = urllib.parse.urlsplit(fleet["base"]).netloc
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
              "scrape_configs": [agentless_job(service)]}
    with start_prometheus(config) as prom:
        try:
            mmz = wait_for(lambda: at_least(prom, 2, "board_mmz_size_bytes"), 30,
                           "MMZ series of both HiSilicon boards")
            # dead0 may already be cut off (test order is not guaranteed under xdist).
            ok = wait_for(lambda: covering(prom, {"hi0", "gen0", "tel0"},
                                           "board_probe_success == 1"), 30,
                          "good probes of hi0, gen0 and tel0")
            bad = wait_for(lambda: prom.query('board_probe_success{board="tel1"} == 0'), 30,
                           "the failed telnet login as a series")
        except AssertionError:
            print(prom.get("/api/v1/targets"), prom.log()[-3000:])
            raise
    assert {s["metric"]["board"] for s in mmz} == {"hi0", "tel0"}
    assert {"hi0", "gen0", "tel0"} <= {s["metric"]["instance"] for s in ok}
    assert bad[0]["metric"]["job"] == "boardfleet-agentless"
    assert all(s["metric"]["lab"] == "ci" and s["metric"]["mode"] == "agentless"
               for s in mmz)


def test_board_that_stops_answering_fails_within_the_timeout(fleet):
    board = fleet["boards"]["dead0"]
    # The pooled session is open. An earlier test's probes under load (Prometheus' 1 s
    # scrape timeout) may have left the board in its connection backoff (at most 30 s).
    wait_for(lambda: probe(fleet, "dead0")["board_probe_success"] == 1.0, 60,
             "a good probe of dead0 while it is still up")
    links = board.netns_exec("ip", "-o", "link", "show").stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name != "lo":
            subprocess.run(["ip", "netns", "exec", board.netns, "ip", "link", "set", name,
                            "down"], check=True, timeout=10)
    for _ in range(3):  # hung pooled session, then reconnects under backoff
        started = time.monotonic()
        got = probe(fleet, "dead0")
        took = time.monotonic() - started
        assert got["board_probe_success"] == 0.0
        # The timeout, not a hung session (which would wait out TCP's minutes).
        assert took < PROBE_TIMEOUT + 10.0, took
    # Prometheus' own scrape timeout header shortens the probe.
    started = time.monotonic()
    status, text = http("GET", "%s/probe?target=dead0" % fleet["base"],
                        headers={"X-Prometheus-Scrape-Timeout-Seconds": "1"})
    assert status == 200 and samples(text)["board_probe_success"] == 0.0
    assert time.monotonic() - started < PROBE_TIMEOUT  # 1 s asked, below the service's 5 s
    # The other boards are not held up by the dead one.
    assert probe(fleet, "gen0")["board_probe_success"] == 1.0
