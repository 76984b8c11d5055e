"""``boardfleet stack up --tsdb victoriametrics``: both topologies from the CLI, with the
committed prometheus.yml and rules, demo boards, a simulated board and the fleet service."""

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, List

import yaml
from stack import test_stack
from support.net import free_port

# The demo sysroots of tests/stack's ``state`` fixture, and one simulated board.
BOARDS = {"demo-generic", "demo-hi3516ev200", "demo-x5", "sim-01-idle"}
DEADLINE = 60.0  # prometheus.yml scrapes every 10s
state = test_stack.state  # the fixture: a state directory, the stack stopped afterwards
_stack = test_stack._stack


def _get(url: str, **params: str) -> Any:
    query = "?" + urllib.parse.urlencode(params) if params else ""
    with urllib.request.urlopen(url + query, timeout=10) as r:
        return json.loads(r.read().decode())


def _urls(stdout: str) -> Dict[str, str]:
    """Process name -> URL, from the lines ``up`` prints."""
    return {parts[0]: parts[-1] for parts in (line.split() for line in stdout.splitlines())
            if len(parts) == 2 and parts[-1].startswith("http://")}


def _vm_boards(vm: str) -> Dict[str, str]:
    result = _get(vm + "/api/v1/query", query='up{job="boardfleet-agent"}')["data"]["result"]
    return {r["metric"]["board"]: r["value"][1] for r in result}


def _up(state: Path, *args: str) -> Dict[str, str]:
    ports: List[str] = []
    for name in ("prometheus", "alertmanager", "service", "boards", "victoriametrics",
                 "vmalert"):
        ports += ["--%s-port" % name, str(free_port())]
    up = _stack(state, "up", "--detach", "--demo-sysroots", str(state.parent / "sysroots"),
                "--sim-boards", "1", "--tsdb", "victoriametrics", *ports, *args)
    assert up.returncode == 0, up.stderr
    return _urls(up.stdout)


def _wait_for_boards(vm: str) -> Dict[str, str]:
    deadline = time.monotonic() + DEADLINE
    boards: Dict[str, str] = {}
    while time.monotonic() < deadline and set(boards) != BOARDS:  # bounded
        boards = _vm_boards(vm)
        time.sleep(1)
    return boards


def _logs(state: Path) -> str:
    """The last lines of each process's log, for a failure message."""
    return "\n".join("== %s\n%s" % (log.name, "\n".join(log.read_text(
        errors="replace").splitlines()[-5:])) for log in sorted((state / "logs").glob("*")))


def test_sharded_stack(state: Path) -> None:
    first = free_port()
    urls = _up(state, "--shards", "2", "--vmagent-port", str(first))
    assert {"victoria-metrics", "vmagent-0", "vmagent-1", "vmalert"} <= set(urls)
    assert "prometheus" not in urls
    status = _stack(state, "status")
    assert status.returncode == 0, status.stdout + _logs(state)
    boards = _wait_for_boards(urls["victoria-metrics"])
    assert boards == dict.fromkeys(BOARDS, "1"), (boards, _logs(state))
    # File SD and the fleet service's HTTP SD list the same boards: one target each, and
    # each board on exactly one shard.
    shards: Dict[str, List[int]] = {}
    for i in (0, 1):
        targets = _get(urls["vmagent-%d" % i] + "/api/v1/targets")["data"]["activeTargets"]
        for t in targets:
            if t["labels"].get("job") == "boardfleet-agent":
                shards.setdefault(t["labels"]["board"], []).append(i)
    assert set(shards) == BOARDS and all(len(v) == 1 for v in shards.values()), shards
    groups = {g["name"] for g in _get(urls["vmalert"] + "/api/v1/rules")["data"]["groups"]}
    assert {"boardfleet-alerts", "boardfleet-recording"} <= groups, groups
    rules = yaml.safe_load((state / "vmalert-rules" / "boardfleet-alerts.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert "BoardDDRBandwidthHigh" in alerts
    assert not [a for a, r in alerts.items() if "keep_firing_for" in r]
    assert _stack(state, "down").returncode == 0
    assert _stack(state, "status").returncode == 3


def test_prometheus_remote_write(state: Path) -> None:
    urls = _up(state, "--shards", "0")
    assert "prometheus" in urls and "vmagent-0" not in urls
    cfg = yaml.safe_load((state / "prometheus.yml").read_text())
    assert cfg["remote_write"] == [{"url": urls["victoria-metrics"] + "/api/v1/write"}]
    boards = _wait_for_boards(urls["victoria-metrics"])
    assert boards == dict.fromkeys(BOARDS, "1"), (boards, _logs(state))


def test_bad_replication_is_refused(state: Path) -> None:
    r = _stack(state, "up", "--detach", "--tsdb", "victoriametrics", "--shards", "2",
               "--replication", "3")
    assert r.returncode == 2 and "replication" in r.stderr
    assert not (state / "stack.json").exists()
