"""Torture: sampling never freezes silently (issue 13, point 1).

A read that blocks (a wedged sysfs driver, a FIFO at a procfs path), or a value no float
can hold, costs only its collector: the others keep sampling, the fault shows in
``board_collector_success``, ``board_collector_timeouts_total`` and the log,
``board_collector_last_success_timestamp_seconds`` stops advancing, threads stay
bounded, and the collector comes back when its read returns. Time bounds here are only
generous "did not hang" limits; every other check waits for an event.
"""

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Dict, Iterator

import pytest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from support.agent import agent_cmd, agent_stderr, run_once, served_agent
from support.paths import FIXTURES

from boardfleet_agent.errors import SourceError
from boardfleet_agent.registry import Collector
from boardfleet_agent.runner import ScrapeRunner
from boardfleet_agent.source import LocalSource, SnapshotSource, Source
from boardfleet_agent.watchdog import is_stuck

HANG = 30.0  # seconds after which a test calls something hung (never reached when it works)


def wait_for(check: Callable[[], bool], what: str, limit: float = HANG) -> None:
    end = time.monotonic() + limit
    while not check():
        if time.monotonic() > end:
            raise AssertionError("gave up waiting for " + what)
        time.sleep(0.02)


def samples(text: bytes) -> Dict[str, float]:
    """``name{labels}`` -> value of an exposition."""
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
            out["%s{%s}" % (s.name, labels)] = s.value
    return out


class Counting(Collector):
    """Counts its runs: proof that it keeps being sampled."""

    name = "counting"

    def __init__(self, settings: object = None, platform: str = "generic") -> None:
        super().__init__({})
        self.runs = 0

    def collect(self, src: Source) -> Iterator[Metric]:
        self.runs += 1
        yield GaugeMetricFamily("board_torture_runs", "runs", value=self.runs)


class Blocking(Collector):
    """Blocks in its read until released, like a wedged driver."""

    name = "blocking"

    def __init__(self, release: threading.Event, block_from: int = 1) -> None:
        super().__init__({})
        self.release = release
        self.block_from = block_from
        self.entered = 0

    def collect(self, src: Source) -> Iterator[Metric]:
        self.entered += 1
        if self.entered >= self.block_from:
            self.release.wait()
        yield GaugeMetricFamily("board_torture_blocking", "came back", value=1)


class Huge(Collector):
    """A procfs number too large for a float, next to a good one."""

    name = "huge"

    def collect(self, src: Source) -> Iterator[Metric]:
        fam = GaugeMetricFamily("board_torture_huge", "huge", labels=["n"])
        fam.add_metric(["ok"], 7)
        fam.add_metric(["bad"], 10 ** 400)
        yield fam


@pytest.fixture
def release() -> Iterator[threading.Event]:
    ev = threading.Event()
    yield ev
    ev.set()  # never leave a worker blocked behind
    wait_for(lambda: not is_stuck("blocking"), "the blocked run to return")


def test_blocked_read_costs_only_its_collector(release: threading.Event,
                                               caplog: pytest.LogCaptureFixture) -> None:
    counting, blocking = Counting(), Blocking(release)
    runner = ScrapeRunner([counting, blocking], SnapshotSource({}), interval=0.05,
                          timeout=0.2)
    threads_before = threading.active_count()
    runner.start()  # returns although a read blocks
    try:
        wait_for(lambda: counting.runs > 20, "the other collector to keep sampling")
        got = samples(runner.exposition())
        assert got['board_collector_success{collector=blocking}'] == 0.0
        assert got['board_collector_success{collector=counting}'] == 1.0
        assert got['board_collector_timeouts_total{collector=blocking}'] == 1.0
        assert 'board_collector_last_success_timestamp_seconds{collector=blocking}' not in got
        assert "board_torture_blocking{}" not in got
        # Not re-entered while stuck: one blocked thread, however many rounds ran.
        assert blocking.entered == 1
        assert threading.active_count() <= threads_before + 3  # scheduler, worker, stuck one
        assert runner.healthy()[0]
        assert any("blocking failed: no result within" in r.getMessage()
                   for r in caplog.records)
        # The read returns: the collector is back with fresh data.
        release.set()
        wait_for(lambda: samples(runner.exposition()).get(
            "board_collector_success{collector=blocking}") == 1.0, "recovery")
        got = samples(runner.exposition())
        assert got["board_torture_blocking{}"] == 1.0
        assert 'board_collector_last_success_timestamp_seconds{collector=blocking}' in got
    finally:
        runner.stop()


def test_read_that_blocks_mid_soak_is_given_up_and_sampling_goes_on(
        release: threading.Event) -> None:
    """The scheduler thread itself is stuck: the watchdog gives it up for a fresh one."""
    counting, blocking = Counting(), Blocking(release, block_from=5)
    runner = ScrapeRunner([blocking, counting], SnapshotSource({}), interval=0.05,
                          timeout=0.2)
    runner.start()
    try:
        wait_for(lambda: blocking.entered == 5, "the read to block")
        runs = counting.runs
        wait_for(lambda: counting.runs > runs + 20, "sampling to go on past the blocked read")
        got = samples(runner.exposition())
        assert got["board_collector_success{collector=blocking}"] == 0.0
        assert got["board_collector_timeouts_total{collector=blocking}"] == 1.0
        assert blocking.entered == 5
        stamp = got["board_collector_last_success_timestamp_seconds{collector=blocking}"]
        release.set()
        wait_for(lambda: samples(runner.exposition()).get(
            "board_collector_success{collector=blocking}") == 1.0, "recovery")
        got = samples(runner.exposition())
        assert got["board_collector_last_success_timestamp_seconds{collector=blocking}"] > stamp
        assert runner.healthy()[0]
    finally:
        release.set()
        runner.stop()


def test_blocked_collector_is_not_entered_again_by_a_reloaded_runner(
        release: threading.Event) -> None:
    """A SIGHUP builds new collectors: they must not pile up a second blocked read."""
    first = Blocking(release)
    runner = ScrapeRunner([first], SnapshotSource({}), interval=0.05, timeout=0.1)
    runner.start()
    runner.stop()
    second = Blocking(release)
    fresh = ScrapeRunner([second, Counting()], SnapshotSource({}), interval=0.05,
                         timeout=0.1)
    fresh.start()
    try:
        wait_for(lambda: b'board_collector_success{collector="blocking"} 0.0'
                 in fresh.exposition(), "the stuck collector to be served as failed")
        assert second.entered == 0
    finally:
        fresh.stop()


def test_blocked_background_sampler_is_reported_stuck(release: threading.Event) -> None:
    class BlockingBackground(Blocking):
        background = True

    runner = ScrapeRunner([BlockingBackground(release), Counting()], SnapshotSource({}),
                          {"blocking": 0.05}, interval=0.05, timeout=0.1)
    runner.start()
    try:
        wait_for(lambda: b'board_collector_success{collector="blocking"} 0.0'
                 in runner.exposition(), "the background sampler to be reported stuck")
        assert b'board_collector_timeouts_total{collector="blocking"} 1.0' in runner.exposition()
        release.set()
        wait_for(lambda: b'board_collector_success{collector="blocking"} 1.0'
                 in runner.exposition(), "recovery")
    finally:
        runner.stop()


def test_number_too_large_for_a_float_fails_only_its_collector() -> None:
    runner = ScrapeRunner([Huge({}), Counting()], SnapshotSource({}), interval=0.05,
                          timeout=5.0)
    runner.start()
    try:
        before = runner.heartbeat
        wait_for(lambda: runner.heartbeat > before, "a further sampling round")
        got = samples(runner.exposition())
        assert got["board_collector_success{collector=huge}"] == 0.0
        assert got["board_torture_huge{n=ok}"] == 7.0
        assert "board_torture_huge{n=bad}" not in got
        assert got["board_collector_success{collector=counting}"] == 1.0
        assert runner.healthy()[0]
    finally:
        runner.stop()


def test_scheduler_survives_a_failing_round(monkeypatch: pytest.MonkeyPatch) -> None:
    import boardfleet_agent.runner as runner_mod

    counting = Counting()
    runner = ScrapeRunner([counting], SnapshotSource({}), interval=0.05, timeout=5.0)
    runner.start()
    failures = []
    real = runner_mod.render

    def flaky(families: object) -> bytes:
        if len(failures) < 3:
            failures.append(1)
            raise OverflowError("int too large to convert to float")
        return real(families)  # type: ignore[arg-type]

    monkeypatch.setattr(runner_mod, "render", flaky)
    try:
        wait_for(lambda: len(failures) == 3 and counting.runs > 10, "rounds after failures")
        assert runner.healthy()[0]
    finally:
        runner.stop()


def stalled_runner(release: threading.Event) -> ScrapeRunner:
    """A runner whose scheduler blocks in a collector (no deadline): sampling stalls."""
    runner = ScrapeRunner([Counting(), Blocking(release)], SnapshotSource({}),
                          {"blocking": 0.2}, interval=0.05)
    release.set()  # the first round, in start(), goes through
    runner.start()
    release.clear()
    runner.stall_after = 0.5
    return runner


def test_stalled_scheduler_fails_health(release: threading.Event) -> None:
    runner = stalled_runner(release)
    try:
        wait_for(lambda: not runner.healthy()[0], "health to fail")
        assert "no sampling round" in runner.healthy()[1]
        release.set()
        wait_for(lambda: runner.healthy()[0], "health to come back")
    finally:
        release.set()
        runner.stop()


def test_fifo_at_a_procfs_path_is_refused_not_waited_on(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    os.mkfifo(str(tmp_path / "proc" / "loadavg"))
    src = LocalSource(str(tmp_path))
    result: Dict[str, object] = {}

    def read() -> None:
        try:
            src.read_text("/proc/loadavg")
        except SourceError as e:
            result["error"] = str(e)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(HANG)
    assert not t.is_alive(), "opening a FIFO blocked"
    assert "not a regular file" in str(result["error"])


@pytest.fixture
def fifo_board(tmp_path: Path) -> Path:
    """The x3 fixture with /proc/loadavg replaced by a FIFO nobody writes."""
    board = tmp_path / "x3"
    shutil.copytree(str(FIXTURES / "x3"), str(board), symlinks=True)
    (board / "proc" / "loadavg").unlink()
    os.mkfifo(str(board / "proc" / "loadavg"))
    return board


def test_once_does_not_hang_on_a_fifo(fifo_board: Path) -> None:
    text = run_once(str(fifo_board))  # subprocess timeout: 60 s
    assert 'board_collector_success{collector="loadavg"} 0.0' in text
    assert 'board_collector_success{collector="cpu"} 1.0' in text


def test_served_agent_with_a_fifo_answers_reloads_and_stops(fifo_board: Path) -> None:
    with served_agent(str(fifo_board), "--collector-timeout", "0.5") as (base, proc):
        body = urllib.request.urlopen(base + "/metrics", timeout=HANG).read()
        got = samples(body)
        assert got["board_collector_success{collector=loadavg}"] == 0.0
        assert got["board_collector_success{collector=cpu}"] == 1.0
        for _ in range(20):  # a storm of reloads, then a stop that must not queue behind
            proc.send_signal(signal.SIGHUP)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(HANG) == 0


def test_healthy_reports_503_when_sampling_stalls(release: threading.Event) -> None:
    """Over HTTP: an agent whose sampling stalled answers 503 on /-/healthy."""
    from boardfleet_agent.web.server import MetricsServer

    runner = stalled_runner(release)
    server = MetricsServer(("127.0.0.1", 0), runner.exposition, "generic",
                           health=runner.healthy)
    server.serve_in_thread()
    url = "http://127.0.0.1:%d/-/healthy" % server.server_address[1]
    try:
        wait_for(lambda: not runner.healthy()[0], "health to fail")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, timeout=HANG)
        assert err.value.code == 503
        release.set()
        wait_for(lambda: runner.healthy()[0], "health to come back")
        assert urllib.request.urlopen(url, timeout=HANG).status == 200
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        runner.stop()


def test_agent_cmd_help_names_the_timeout() -> None:
    out = subprocess.run(agent_cmd("--help"), capture_output=True, text=True, timeout=HANG,
                         check=True).stdout
    assert "--collector-timeout" in out


def test_reload_with_nested_arrays_keeps_the_running_agent(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("sample_interval = 1\n")
    generic = str(FIXTURES / "generic")
    with served_agent(generic, "--config", str(config), "--statsd-listen", "off") as (
            base, proc):
        config.write_text('[collectors.processes]\nnames = [["a", ["b"]]]\n'
                          '[inference]\nmax_models = [[1]]\ntags = [["x"]]\n')
        proc.send_signal(signal.SIGHUP)
        config.write_text("sample_interval = [[0.5]]\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: proc.poll() is not None or "reload failed" in agent_stderr(proc),
                 "the reload to be refused")
        assert proc.poll() is None
        assert urllib.request.urlopen(base + "/metrics", timeout=HANG).status == 200


def test_a_source_that_goes_away_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    from boardfleet_agent.errors import NoData

    class Flaky(Collector):
        name = "flaky"
        gone = False

        def collect(self, src: Source) -> Iterator[Metric]:
            if self.gone:
                raise NoData("no /proc/media-mem")
            yield GaugeMetricFamily("board_torture_flaky", "flaky", value=1)

    caplog.set_level(logging.INFO, logger="boardfleet.agent")
    flaky = Flaky({})
    runner = ScrapeRunner([flaky], SnapshotSource({}), background=False)
    runner.exposition()
    flaky.gone = True
    runner.exposition()
    flaky.gone = False
    runner.exposition()
    messages = [r.getMessage() for r in caplog.records]
    assert "collector flaky: its source is gone (no /proc/media-mem); its series are " \
           "dropped" in messages
    assert "collector flaky: its source is back" in messages


def test_stopping_during_a_blocked_background_run_leaks_no_fds(
        release: threading.Event) -> None:
    """SIGHUP while a vendor tool runs: the sampler's fds close when its run ends."""
    class BlockingBackground(Blocking):
        background = True

    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        blocking = BlockingBackground(release)
        runner = ScrapeRunner([blocking], SnapshotSource({}), {"blocking": 0.05},
                              timeout=0.1)
        runner.start()
        wait_for(lambda b=blocking: b.entered == 1, "the run to block")
        runner.stop()  # gives up waiting on the blocked run
        release.set()
        wait_for(lambda r=runner: not r.samplers[0].thread.alive, "the run to end")
        release.clear()
    assert len(os.listdir("/proc/self/fd")) <= fds


def test_stopping_while_the_scheduler_is_blocked_leaks_no_fds(
        release: threading.Event, caplog: pytest.LogCaptureFixture) -> None:
    """A stop that gives up on a scheduler blocked in a read: its pipe closes when the read
    returns (it used to stay open for good)."""
    def ours() -> list:
        return [t for t in threading.enumerate()
                if t.name in ("scheduler", "sampling-watchdog", "collector-worker")]

    wait_for(lambda: not ours(), "earlier tests' threads to end")
    fds = len(os.listdir("/proc/self/fd"))
    blocking = Blocking(release, block_from=2)  # the start-up round returns, the next blocks
    runner = ScrapeRunner([blocking], SnapshotSource({}), {"blocking": 0.05}, timeout=HANG)
    runner.start()
    wait_for(lambda: blocking.entered == 2, "the scheduler's run to block")
    runner.stop()  # gives up waiting on the blocked run
    assert "thread scheduler did not stop within 2s; its run ends alone" in [
        r.getMessage() for r in caplog.records]
    release.set()
    wait_for(lambda: not ours(), "the blocked run to return and its thread to end")
    assert len(os.listdir("/proc/self/fd")) <= fds
