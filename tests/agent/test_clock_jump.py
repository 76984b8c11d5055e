"""A wall-clock jump, forward or back, neither stalls nor spins the agent.

The agent runs under libfaketime (Debian package ``faketime``) with only the wall clock
faked (``FAKETIME_DONT_FAKE_MONOTONIC=1``), from an offset file the test rewrites while
the agent runs. The monotonic clock, which the agent's schedules use, goes on unmoved,
as it does when an NTP step or an operator's ``date -s`` moves a board's clock.

libfaketime also rewrites the absolute deadlines of timed lock waits, so it cannot show
how ``Event.wait`` on Python < 3.11 follows a real clock step (bpo-41710); the agent
does not sleep in those waits (``boardfleet_agent.wakeup``). Debian's libfaketime also
rewrites the monotonic deadlines of ``pthread_cond_timedwait``, which CPython's GIL
hand-off waits on: after a jump those waits return at once and the interpreter spins,
whatever the agent does. ``FAKETIME_FORCE_MONOTONIC_FIX=0`` leaves them alone.
"""

import glob
import os
import re
import shutil
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support.agent import served_agent
from support.paths import FIXTURES, REPO

TICKS = os.sysconf("SC_CLK_TCK")
DAY = 86400.0
WINDOW = 3.0  # seconds over which the agent's CPU is measured


def _libfaketime() -> str:
    found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    if not found:
        pytest.skip("libfaketime is not installed (Debian package faketime)")
    return found[0]


def _cpu_seconds(pid: int) -> float:
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _cpu_over(pid: int, seconds: float) -> float:
    """CPU seconds the process used while the test slept ``seconds``."""
    before = _cpu_seconds(pid)
    time.sleep(seconds)
    return _cpu_seconds(pid) - before


def _scrape(base: str) -> str:
    started = time.monotonic()
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        body = r.read().decode()
    assert time.monotonic() - started < 10.0, "a scrape stalled"
    return body


def _value(body: str, series: str) -> float:
    match = re.search(r"^%s (\S+)$" % re.escape(series), body, re.M)
    assert match, series
    return float(match.group(1))


@pytest.mark.parametrize("interpreter", ["this", "3.8"])
def test_clock_jumps_neither_stall_nor_spin_the_agent(tmp_path: Path, interpreter: str,
                                                      request) -> None:
    """On this Python and on the boards' 3.8."""
    python, pythonpath = sys.executable, os.environ.get("PYTHONPATH", "")
    if interpreter == "3.8":
        python, site = request.getfixturevalue("py38_path").split(os.pathsep)
        pythonpath = os.pathsep.join([site, str(REPO / "agent")])
    root = tmp_path / "board"
    shutil.copytree(FIXTURES / "generic", root, symlinks=True)
    offset = tmp_path / "offset"
    offset.write_text("+0\n")
    env = {"LD_PRELOAD": _libfaketime(), "FAKETIME_TIMESTAMP_FILE": str(offset),
           "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           "FAKETIME_FORCE_MONOTONIC_FIX": "0",
           "PYTHONPATH": pythonpath}
    stamp = 'board_collector_last_success_timestamp_seconds{collector="loadavg"}'
    with served_agent(str(root), "--statsd-listen", "off", "--sample-interval", "0.5",
                      env=env, python=python) as (base, proc):
        # The peer, measured in this run on this machine: the agent's CPU over a window
        # with the clock unmoved. A spinning thread adds most of a core on top of it.
        _scrape(base)
        calm = _cpu_over(proc.pid, WINDOW)
        for load, jump, shift in ((1.5, "+1d", DAY), (2.5, "-1d", -DAY),
                                  (3.5, "-365d", -365 * DAY), (4.5, "+0", 0.0)):
            offset.write_text(jump + "\n")
            (root / "proc/loadavg").write_text("%.2f 0.61 0.58 2/311 4567\n" % load)
            # Sampling goes on: the new file shows (a stalled scheduler never shows it).
            deadline = time.monotonic() + 30
            while _value(body := _scrape(base), "board_load1") != load:
                assert time.monotonic() < deadline, "sampling stalled after %s" % jump
                time.sleep(0.1)
            # The jump took effect: the sample's wall-clock stamp moved with it.
            assert abs(_value(body, stamp) - (time.time() + shift)) < 120
            # No thread spins: a busy loop would add most of a core over the window.
            used = _cpu_over(proc.pid, WINDOW)
            assert used < calm + WINDOW / 2, (
                "agent used %.2f s of CPU in %g s after %s (%.2f s with the clock unmoved)"
                % (used, WINDOW, jump, calm))
        offset.write_text("-1d\n")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
