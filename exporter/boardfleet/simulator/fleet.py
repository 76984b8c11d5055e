"""A fleet of simulated boards: sysroots rewritten every tick, optionally with agents.

With agents, each board gets a real ``boardfleet-agent`` on a free loopback port with
short background intervals, its app's inference latency is sent to the agent's StatsD
port, and a Prometheus file SD target file lists them with their board labels.
"""

import contextlib
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import yaml

from boardfleet.inventory import Board, Inventory, atomic_write
from boardfleet.simulator.scenarios import SCENARIOS, BoardState
from boardfleet.simulator.sysroot import CpuTimes, write_sysroot

# Agent settings for simulated boards: sample MMZ and hiddrs every second.
AGENT_CONFIG = """\
[collectors.mmz]
interval = 1

[collectors.hisi_ddr]
interval = 1
samples = 1
"""
TIMINGS_PER_TICK = 20


@dataclass
class SimBoard:
    name: str
    scenario: str
    root: Path
    agent: subprocess.Popen | None = None
    port: int = 0
    statsd_port: int = 0
    state: BoardState | None = None
    cpu: CpuTimes = field(default_factory=CpuTimes)
    last_tick: float = 0.0


class SimFleet:
    """``boards`` simulated boards under ``out``, scenarios assigned round-robin."""

    def __init__(self, out: str | Path, boards: int, scenarios: List[str],
                 ramp: float = 600.0, labels: Dict[str, str] | None = None) -> None:
        unknown = [s for s in scenarios if s not in SCENARIOS]
        if unknown or not scenarios or boards < 1:
            raise ValueError("need >= 1 board and scenarios from: %s" % ", ".join(SCENARIOS))
        self.out = Path(out)
        self.ramp = ramp
        self.labels = labels or {"rack": "sim", "owner": "demo"}
        self.boards = []
        for i in range(boards):
            scenario = scenarios[i % len(scenarios)]
            name = "sim-%02d-%s" % (i + 1, scenario)
            self.boards.append(SimBoard(name, scenario, self.out / name))
        self.start = time.monotonic()
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def tick(self) -> None:
        """Rewrite every live board's sysroot for the current moment; stop the agent of
        a board that is off and start it again when the board is back (a reboot)."""
        t = time.monotonic() - self.start
        for b in self.boards:
            b.state = SCENARIOS[b.scenario](t, self.ramp)
            if not b.state.alive:
                self._stop_agent(b)
                continue
            b.cpu.advance(b.state, t - b.last_tick)
            b.last_tick = t
            write_sysroot(b.root, b.state, b.cpu)
            if b.agent is None and b.port:
                self._start_agent(b)
            if b.agent is not None and b.state.app_running:
                self._send_timings(b)

    def start_agents(self, targets: str | Path) -> None:
        """Start one agent per board and write their file SD ``targets`` file."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "agent.toml").write_text(AGENT_CONFIG)
        self.tick()
        inv = Inventory()
        for b in self.boards:
            b.port, b.statsd_port = _free_port(), _free_port()
            if b.state is not None and b.state.alive:
                self._start_agent(b)
            inv.add(Board(name=b.name, host="127.0.0.1", agent_port=b.port, platform="hisi",
                          labels={**self.labels, "scenario": b.scenario}))
        atomic_write(str(targets), yaml.safe_dump(inv.file_sd("agent"), sort_keys=False))

    def _start_agent(self, b: SimBoard) -> None:
        b.agent = subprocess.Popen(
            [sys.executable, "-m", "boardfleet_agent", "--sysroot", str(b.root),
             "--platform", "hisi", "--config", str(self.out / "agent.toml"),
             "--listen", "127.0.0.1:%d" % b.port,
             "--statsd-listen", "127.0.0.1:%d" % b.statsd_port, "--log-level", "warning"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    def run(self, duration: float | None, period: float = 1.0) -> None:
        """Tick every ``period`` seconds for ``duration`` seconds (None: until stopped)."""
        stop = time.monotonic() + duration if duration is not None else None
        while stop is None or time.monotonic() < stop:
            self.tick()
            time.sleep(period)

    def stop(self) -> None:
        for b in self.boards:
            self._stop_agent(b)
        self._udp.close()

    def _send_timings(self, b: SimBoard) -> None:
        assert b.state is not None
        lines = ["inference:%.3f|ms|#model:detector" % (b.state.latency_ms *
                                                          random.uniform(0.8, 1.1))
                 for _ in range(TIMINGS_PER_TICK)]
        with contextlib.suppress(OSError):
            self._udp.sendto("\n".join(lines).encode(), ("127.0.0.1", b.statsd_port))

    @staticmethod
    def _stop_agent(b: SimBoard) -> None:
        if b.agent is None:
            return
        if b.agent.poll() is None:
            b.agent.send_signal(signal.SIGTERM)
            try:
                b.agent.wait(10)
            except subprocess.TimeoutExpired:
                b.agent.kill()
                b.agent.wait()
        b.agent = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

