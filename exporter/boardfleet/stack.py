"""The central stack without Docker: Prometheus and Alertmanager from local binaries (Debian
packages), the fleet service, and demo boards (real agents on the fixture sysroots).

Everything lives under one state directory: generated configs, data, logs and
``stack.json`` (the pid and start time of every process, so ``down`` stops exactly what
``up`` started). Each process runs in its own session; stopping sends SIGTERM to its
process group, then SIGKILL after a grace period.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from boardfleet.inventory import Board, Inventory, load
from boardfleet_agent.platform import detect
from boardfleet_agent.source import LocalSource

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "prometheus"
FIXTURES = REPO / "tests" / "fixtures"
BINARIES = {"prometheus": ("prometheus",),
            "alertmanager": ("prometheus-alertmanager", "alertmanager")}
# The fleet service's address in prometheus/prometheus.yml (``boardfleet serve`` default).
SERVICE_ADDRESS = "127.0.0.1:9120"
AGENT_JOB = "boardfleet-agent"
# ``boardfleet`` itself, whether or not its entry point is on PATH.
CLI = [sys.executable, "-c", "import sys; from boardfleet.cli import main; sys.exit(main())"]
SCENARIOS = "idle,ddr-saturation,mmz-leak,latency-spike,restart-leak,reboot,ddr-duty"
STOP_GRACE = 10.0
HEALTH_TIMEOUT = 30.0


class StackError(RuntimeError):
    """The stack cannot start or stop; the message says why."""


@dataclass
class Ports:
    prometheus: int = 9090
    alertmanager: int = 9093
    service: int = 9120
    boards: int = 9200  # demo board i listens on boards + i


@dataclass
class Proc:
    name: str
    pid: int
    start: str  # /proc/<pid>/stat start time: tells our process from a reused pid
    url: str
    health: str  # path under url answering 200, or (url "") a file written when ready
    log: str


@dataclass
class Stack:
    state: Path
    host: str = "127.0.0.1"
    ports: Ports = field(default_factory=Ports)
    demo_sysroots: Path = FIXTURES
    sim_boards: int = 4
    skipped: list[str] = field(default_factory=list)
    soak: str = ""  # the demo soak run, as the summary prints it

    @property
    def record(self) -> Path:
        return self.state / "stack.json"

    def running(self) -> list[Proc]:
        """Processes of the recorded stack that are still alive."""
        return [p for p in self.recorded() if _start_time(p.pid) == p.start]

    def recorded(self) -> list[Proc]:
        if not self.record.is_file():
            return []
        return [Proc(**d) for d in json.loads(self.record.read_text())]

    def up(self) -> list[Proc]:
        """Start every piece, wait until each answers its health URL; stop all on failure."""
        if self.running():
            raise StackError("a stack is already running from %s: run 'boardfleet stack down'"
                             % self.state)
        binaries = {name: _binary(name) for name in BINARIES}
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "logs").mkdir(exist_ok=True)
        procs: list[Proc] = []
        try:
            inventory = self._inventory()
            for board in (b for b in inventory if b.labels.get("demo") == "true"):
                procs.append(self._spawn(
                    "board-" + board.name,
                    _agent_cmd(board.sysroot, "%s:%d" % (self.host, board.agent_port)),
                    "http://%s:%d" % (self.host, board.agent_port), "/-/healthy"))
            sim = self._simulator()
            if sim:
                procs.append(self._spawn("simulator", sim, "", str(self.sim_targets)))
            self._started(procs)
            service = self._service_url()
            if service:  # before Prometheus, whose service discovery asks it
                procs.append(self._spawn("service", [
                    *CLI, "serve", "-i", str(inventory.path),
                    "--listen", "%s:%d" % (self.host, self.ports.service)],
                    service, "/healthz"))
                self._started(procs)
                self.soak = self._demo_soak(inventory)
            am = "http://%s:%d" % (self.host, self.ports.alertmanager)
            procs.append(self._spawn("alertmanager", [
                binaries["alertmanager"],
                "--config.file=%s" % self._alertmanager_config(service),
                "--storage.path=%s" % (self.state / "alertmanager"),
                "--web.listen-address=%s:%d" % (self.host, self.ports.alertmanager),
                "--cluster.listen-address="], am, "/-/ready"))
            procs.extend(self._tsdb(binaries["prometheus"], inventory, service, am))
            self._started(procs)
        except BaseException:
            _stop(procs)
            self.record.unlink(missing_ok=True)
            raise
        return procs

    def down(self) -> list[Proc]:
        """Stop every recorded process (reverse start order); return those that were alive."""
        alive = self.running()
        _stop(alive)
        self.record.unlink(missing_ok=True)
        return alive

    def _tsdb(self, prometheus: str, inventory: Inventory, service: str,
              alertmanager: str) -> list[Proc]:
        """What scrapes, stores and evaluates the rules: here one Prometheus
        (``boardfleet.stack_vm`` puts VictoriaMetrics behind or instead of it)."""
        return [self._spawn("prometheus", [
            prometheus, "--config.file=%s" % self._prometheus_config(inventory, service),
            "--storage.tsdb.path=%s" % (self.state / "prometheus"),
            "--web.listen-address=%s:%d" % (self.host, self.ports.prometheus),
            "--web.enable-lifecycle"],
            "http://%s:%d" % (self.host, self.ports.prometheus), "/-/ready")]

    def _spawn(self, name: str, argv: list[str], url: str, health: str) -> Proc:
        log = self.state / "logs" / ("%s.log" % name)
        with open(log, "ab") as out:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=self.state)
        return Proc(name, popen.pid, _start_time(popen.pid), url, health, str(log))

    def _started(self, procs: list[Proc]) -> None:
        """Record ``procs`` (so ``down`` finds them), then wait until all are healthy."""
        # Written aside and renamed: ``status`` or ``down`` never read it half-written.
        tmp = self.record.with_name(self.record.name + ".new")
        tmp.write_text(json.dumps([asdict(p) for p in procs], indent=2) + "\n")
        os.replace(tmp, self.record)
        for p in procs:
            _wait_healthy(p)

    @property
    def sim_targets(self) -> Path:
        return self.state / "sim" / "targets.yml"

    def _simulator(self) -> list[str]:
        """``boardfleet simulate`` with agents: live HiSilicon boards by scenario."""
        if self.sim_boards <= 0:
            return []
        try:
            import boardfleet.simulator  # noqa: F401
        except ImportError as e:
            self.skipped.append("simulated boards (boardfleet.simulator: %s)" % e)
            return []
        self.sim_targets.unlink(missing_ok=True)
        return [*CLI, "simulate", "--boards", str(self.sim_boards), "--scenario", SCENARIOS,
                "--out", str(self.sim_targets.parent), "--agents",
                "--targets", str(self.sim_targets), "--ramp", "1800"]

    def _service_url(self) -> str:
        try:
            import boardfleet.service.app  # noqa: F401
        except ImportError as e:
            self.skipped.append("fleet service (boardfleet.service not importable: %s)" % e)
            return ""
        return "http://%s:%d" % (self.host, self.ports.service)

    def _demo_soak(self, inventory: Inventory) -> str:
        """A soak run ``demo`` over the simulated boards, started once per state directory
        (kept across restarts), so the soak dashboard and ``boardfleet soak report demo``
        have a run to show. Returns what the summary prints."""
        from boardfleet.soak.store import SoakError, SoakStore, default_path

        try:
            groups = yaml.safe_load(self.sim_targets.read_text()) or []
            names = sorted(g["labels"]["board"] for g in groups)
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            names = []
        if not names:
            return ""
        store = SoakStore(default_path(str(inventory.path)))
        try:
            run = store.get("demo")
        except SoakError:
            run = store.start("demo", names, "the simulated boards",
                              {"source": "boardfleet stack up"})
        return "%s, %d boards, since %s" % (
            "running" if run.active else "stopped", len(run.boards),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(run.started)))

    def _inventory(self) -> Inventory:
        """``boards.yml`` in the state directory: your boards plus one demo board per sysroot."""
        inv = load(str(self.state / "boards.yml"))
        sysroots = sorted(p for p in self.demo_sysroots.glob("*") if (p / "proc").is_dir())
        if not sysroots:
            self.skipped.append("demo boards (no sysroots under %s)" % self.demo_sysroots)
        ports = free_ports(self.host, self.ports.boards, len(sysroots))
        # Refreshed on every start (ports may change).
        for root, port in zip(sysroots, ports, strict=True):
            inv.add(Board(name="demo-" + root.name, host=self.host,
                          platform=detect(LocalSource(str(root))),
                          agent_port=port, sysroot=str(root),
                          labels={"demo": "true", "rack": "demo", "owner": "boardfleet"}),
                    replace=True)
        inv.save()
        return inv

    def _alertmanager_config(self, service: str) -> Path:
        """prometheus/alertmanager.yml with its webhook pointed at this stack's service."""
        src = PROMETHEUS_DIR / "alertmanager.yml"
        if src.is_file():
            path = self.state / "alertmanager.yml"
            text = src.read_text()
            if service:
                text = text.replace(SERVICE_ADDRESS, service.removeprefix("http://"))
            path.write_text("# Generated by 'boardfleet stack up' from %s\n%s" % (src, text))
            return path
        self.skipped.append("prometheus/alertmanager.yml (using a null receiver)")
        path = self.state / "alertmanager.yml"
        path.write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
        return path

    def _prometheus_config(self, inventory: Inventory, service: str) -> Path:
        """prometheus/prometheus.yml pointed at this stack's targets, rules and Alertmanager."""
        src = PROMETHEUS_DIR / "prometheus.yml"
        cfg: dict[str, Any] = yaml.safe_load(src.read_text()) if src.is_file() else {
            "global": {"scrape_interval": "10s", "evaluation_interval": "15s"},
            "scrape_configs": [{"job_name": "boardfleet-agent"}]}
        cfg["rule_files"] = [str(PROMETHEUS_DIR / f) for f in cfg.get("rule_files", [])]
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [
            {"targets": ["%s:%d" % (self.host, self.ports.alertmanager)]}]}]}
        targets = self.state / "targets.json"
        targets.write_text(json.dumps(inventory.file_sd("agent"), indent=2) + "\n")
        jobs = []
        for job in cfg["scrape_configs"]:
            uses_service = "http_sd_configs" in job
            if uses_service and service:
                # Point the fleet service's address (SD URLs, /probe relabelling) at ours.
                job = yaml.safe_load(yaml.safe_dump(job).replace(
                    SERVICE_ADDRESS, service.removeprefix("http://")))
            elif uses_service and job.get("metrics_path") == "/probe":
                self.skipped.append("job %s (it needs the fleet service)" % job["job_name"])
                continue
            else:
                job.pop("http_sd_configs", None)
            if job.get("job_name") == AGENT_JOB:  # demo boards (without the service) + sim
                files = [str(self.sim_targets)] + ([] if service else [str(targets)])
                job["file_sd_configs"] = [{"files": files, "refresh_interval": "10s"}]
            jobs.append(job)
        cfg["scrape_configs"] = jobs
        path = self.state / "prometheus.yml"
        path.write_text("# Generated by 'boardfleet stack up' from %s\n" % src
                        + yaml.safe_dump(cfg, sort_keys=False))
        return path


def _agent_cmd(sysroot: str, listen: str) -> list[str]:
    argv = [sys.executable, "-m", "boardfleet_agent", "--sysroot", sysroot, "--listen", listen]
    config = Path(sysroot) / "agent.toml"
    return [*argv, "--config", str(config)] if config.is_file() else argv


def free_ports(host: str, first: int, count: int) -> list[int]:
    """``count`` ports from ``first`` on that ``host`` can listen on now, skipping taken ones."""
    ports: list[int] = []
    port = first
    while len(ports) < count:
        if port > 65535:
            raise StackError("no free port for the demo boards from %d on %s" % (first, host))
        with socket.socket() as s:
            try:
                s.bind((host, port))
                ports.append(port)
            except OSError:
                pass
        port += 1
    return ports


def _binary(name: str) -> str:
    for candidate in BINARIES[name]:
        path = shutil.which(candidate)
        if path:
            return path
    raise StackError("%s not found: install Debian's '%s' package"
                     % (name, BINARIES[name][0]))


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks ("" when gone or a zombie)."""
    try:
        stat = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[1].split()
    return "" if fields[0] in ("Z", "X") else fields[19]


def _wait_healthy(p: Proc, timeout: float = HEALTH_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(p.pid)  # a child that died at start is a zombie until reaped
        if not p.start or _start_time(p.pid) != p.start:
            raise StackError("%s exited at start; see %s" % (p.name, p.log))
        if healthy(p):
            return
        time.sleep(0.2)
    raise StackError("%s did not answer %s within %.0fs; see %s"
                     % (p.name, p.url + p.health, timeout, p.log))


def healthy(p: Proc) -> bool:
    if not p.url:
        return Path(p.health).is_file()
    try:
        with urllib.request.urlopen(p.url + p.health, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _stop(procs: list[Proc]) -> None:
    """SIGTERM each process group (reverse order), SIGKILL what outlives the grace period."""
    for p in reversed(procs):
        if _start_time(p.pid) == p.start:
            _signal(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for p in reversed(procs):
        while _start_time(p.pid) == p.start and time.monotonic() < deadline:
            _reap(p.pid)
            time.sleep(0.1)
        if _start_time(p.pid) == p.start:
            _signal(p.pid, signal.SIGKILL)
            _reap(p.pid)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _reap(pid: int) -> None:
    """Collect our own exited child (a zombie still has a /proc entry)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
