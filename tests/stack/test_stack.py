"""``boardfleet stack``: the real binaries start, answer, and stop without orphans."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, List

import pytest
from support.net import free_port
from support.paths import FIXTURES

CLI = [sys.executable, "-c", "import sys; from boardfleet.cli import main; sys.exit(main())"]
DEMO = ("generic", "hi3516ev200", "x5")
PROCESSES = len(DEMO) + 4  # + simulator (with its agent), service, Alertmanager, Prometheus


def _stack(state: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "stack", "--state-dir", str(state), *args],
                          capture_output=True, text=True, timeout=120, env=env)


def _port_args() -> List[str]:
    return ["--sim-boards", "1", "--prometheus-port", str(free_port()),
            "--alertmanager-port", str(free_port()), "--service-port", str(free_port()),
            "--boards-port", str(free_port())]


def _pids(state: Path) -> List[int]:
    record = state / "stack.json"
    return [p["pid"] for p in json.loads(record.read_text())] if record.is_file() else []


def _alive(pid: int) -> bool:
    try:
        stat = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _leftovers(state: Path) -> List[str]:
    """Command lines of live processes that mention the state directory (orphans)."""
    out = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(state) in cmd and _alive(int(d.name)):
            out.append(cmd)
    return out


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read().decode())


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """A state directory; whatever the test left running is stopped afterwards."""
    demo = tmp_path / "sysroots"
    demo.mkdir()
    for name in DEMO:
        (demo / name).symlink_to(FIXTURES / name)
    state = tmp_path / "stack"
    try:
        yield state
    finally:
        pids = _pids(state)
        _stack(state, "down")
        for pid in pids:  # the command under test failed to stop it
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)


def test_up_status_down(state: Path) -> None:
    """A board added to the stack's inventory beforehand is discovered beside the demos."""
    demo = str(state.parent / "sysroots")
    state.mkdir()
    added = subprocess.run([*CLI, "inventory", "-i", str(state / "boards.yml"), "add",
                            "real-1", "127.0.0.77", "--platform", "hisi"],
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    up = _stack(state, "up", "--detach", "--demo-sysroots", demo, *_port_args())
    assert up.returncode == 0, up.stderr
    prom = next(line.split()[-1] for line in up.stdout.splitlines()
                if line.strip().startswith("prometheus"))
    assert "demo boards   3 agents" in up.stdout

    # The demo soak run covers the simulated boards: the soak dashboard and report have one.
    assert "soak run      demo: running, 1 boards" in up.stdout, up.stdout
    runs = subprocess.run([*CLI, "soak", "-i", str(state / "boards.yml"), "list", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert runs.returncode == 0, runs.stderr
    assert [(r["name"], r["boards"], r["active"]) for r in json.loads(runs.stdout)] == [
        ("demo", ["sim-01-idle"], True)]

    status = _stack(state, "status")
    assert status.returncode == 0, status.stdout
    assert status.stdout.count("healthy") == PROCESSES

    again = _stack(state, "up", "--detach", "--demo-sysroots", demo, *_port_args())
    assert again.returncode == 1 and "already running" in again.stderr

    rules = {g["name"] for g in _get(prom + "/api/v1/rules")["data"]["groups"]}
    assert rules, "the repository's rule files are loaded"
    # Alertmanager posts to this stack's fleet service (alert history), not to 9120.
    service = next(line.split()[-1] for line in up.stdout.splitlines()
                   if line.strip().startswith("service"))
    assert service + "/alerts/webhook" in (state / "alertmanager.yml").read_text()
    deadline = time.monotonic() + 30
    up_boards: dict = {}
    while time.monotonic() < deadline and len(up_boards) < len(DEMO) + 1:
        targets = _get(prom + "/api/v1/targets")["data"]["activeTargets"]
        up_boards = {t["labels"]["board"]: t["labels"]["platform"] for t in targets
                     if t["health"] == "up"}
        time.sleep(0.5)
    assert {t["labels"]["board"]: t["scrapeUrl"] for t in targets
            if t["health"] != "up"} == {"real-1": "http://127.0.0.77:9776/metrics"}
    assert up_boards == {"demo-generic": "generic", "demo-hi3516ev200": "hisi",
                         "demo-x5": "horizon", "sim-01-idle": "hisi"}

    pids = _pids(state)
    down = _stack(state, "down")
    assert down.returncode == 0 and "stopped %d processes" % len(pids) in down.stdout
    time.sleep(0.5)  # init reaps the detached processes
    assert [p for p in pids if _alive(p)] == []
    assert _leftovers(state) == []
    assert _stack(state, "status").returncode == 3


def test_ctrl_c_stops_everything(state: Path, tmp_path: Path) -> None:
    # Output to files: nothing reads a pipe until the stack is stopped, 90 s later.
    out_file, err_file = open(tmp_path / "out", "w+"), open(tmp_path / "err", "w+")  # noqa: SIM115
    proc = subprocess.Popen([*CLI, "stack", "--state-dir", str(state), "up", "--demo-sysroots",
                             str(state.parent / "sysroots"), *_port_args()],
                            stdout=out_file, stderr=err_file, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if len(_pids(state)) == PROCESSES and _stack(state, "status").returncode == 0:
                break
            time.sleep(0.5)
        pids = _pids(state)
        assert len(pids) == PROCESSES
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out_file.close()
        err_file.close()
    assert proc.returncode == 0, err
    assert "stack stopped" in out
    assert [p for p in pids if _alive(p)] == []
    assert _leftovers(state) == []
    assert not (state / "stack.json").exists()


def test_missing_binary_is_named(state: Path) -> None:
    env = dict(os.environ, PATH=str(state.parent))
    r = _stack(state, "up", "--detach", *_port_args(), env=env)
    assert r.returncode == 1
    assert "install Debian's 'prometheus' package" in r.stderr
    assert _pids(state) == []


def test_demo_board_ports_skip_a_taken_port() -> None:
    """A port between the first demo board's and the last is in use: the boards go around it."""
    from boardfleet.stack import free_ports

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = free_ports("127.0.0.1", port - 1, 3)
    assert port not in ports
    assert len(set(ports)) == 3 and ports == sorted(ports)


def test_a_piece_that_dies_at_start_is_named_at_once(tmp_path: Path) -> None:
    """A child that exits at start (its port taken, say) is a zombie until reaped: the
    stack reaps it and says it exited, instead of waiting out the health timeout."""
    from boardfleet.stack import Proc, StackError, _start_time, _wait_healthy

    log = tmp_path / "piece.log"
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(2)"])
    proc = Proc("piece", child.pid, _start_time(child.pid), "http://127.0.0.1:9", "/-/healthy",
                str(log))
    with pytest.raises(StackError, match=r"piece exited at start; see .*piece\.log"):
        _wait_healthy(proc, timeout=600)
