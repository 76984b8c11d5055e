"""Issue 13: SIGHUP while a vendor tool runs leaked 2 fds per reload (a replaced
sampler's wakeup pipe, kept open while its run went on). A real agent, a real fake
``hiddrs`` that prints until it is killed (as tests/hisi runs it), and reloads during
its runs: the agent's fd count comes back to where it was.
"""

import os
import signal
import time
from pathlib import Path
from typing import Callable, List

from support.agent import served_agent
from support.process import alive

FAKE_HIDDRS = """#!/bin/sh
echo "$$" >> "$(dirname "$0")/../../runs.log"
echo "*** Board tools : ver0.0.1_20121120 ***"
echo "===== ddr statistic ====="
while :; do sleep 4; echo "ddrc0[10.00%]"; done
"""
RELOADS = 3
PATIENCE = 60.0  # seconds; a bound for a hung agent, not a timing assertion


def wait_for(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not done():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def runs(root: Path) -> List[int]:
    log = root / "runs.log"
    return [int(p) for p in log.read_text().split()] if log.exists() else []


def tool_running(root: Path) -> bool:
    """The latest run goes on, and it alone (runs given up on have ended)."""
    pids = runs(root)
    return bool(pids) and alive(pids[-1]) and not any(alive(p) for p in pids[:-1])


def open_fds(pid: int) -> int:
    return len(os.listdir("/proc/%d/fd" % pid))


def test_reloads_during_a_vendor_tool_run_leak_no_fds(tmp_path: Path) -> None:
    root = tmp_path / "board"
    (root / "usr/bin").mkdir(parents=True)
    tool = root / "usr/bin/hiddrs"
    tool.write_text(FAKE_HIDDRS)
    tool.chmod(0o755)
    config = tmp_path / "agent.toml"
    # The tool prints too slowly: each run lasts until its 5 s timeout kills it, longer
    # than a reload waits for the replaced sampler (2 s), which then ends alone.
    config.write_text("[collectors.hisi_ddr]\nenabled = true\ninterval = 0.2\nsamples = 1\n")
    with served_agent(str(root), "--collector.disable-defaults", "--config", str(config),
                      "--statsd-listen", "off") as (_base, proc):
        wait_for("a first tool run", lambda: tool_running(root))
        wait_for("a second tool run", lambda: len(runs(root)) >= 2 and tool_running(root))
        before = open_fds(proc.pid)  # while a run is going: the tool's pipe is open
        for _ in range(RELOADS):
            proc.send_signal(signal.SIGHUP)
            time.sleep(0.5)
        started = len(runs(root))
        # Replaced samplers end when their runs do: measure again while one fresh run,
        # and no other, goes on.
        wait_for("runs after the reloads",
                 lambda: len(runs(root)) >= started + 2 and tool_running(root))
        after = open_fds(proc.pid)
        assert proc.poll() is None
        # One spare fd: the measures may fall on either side of a run's pipe opening.
        assert after <= before + 1, (before, after, {
            fd: os.readlink("/proc/%d/fd/%s" % (proc.pid, fd))
            for fd in os.listdir("/proc/%d/fd" % proc.pid)})
