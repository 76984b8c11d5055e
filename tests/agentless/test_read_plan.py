"""The read plan is a contract: an agentless collector reads nothing but its ``paths``.

For every fixture board and every collector a probe may run, the collector gives the
same families (and the same failure, if any) over a snapshot fetched by the probe's own
batched read of its ``paths`` as over the board's files read directly. A collector that
reads outside its plan shows here as a difference; one whose plan holds per-process
globs (a ``cat`` per process on a busybox board) fails the plan check.
"""

import shutil
import subprocess
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from support.paths import BOARDS, FIXTURES

from boardfleet.inventory import Board
from boardfleet.probe import Prober, probe_collector, probed_collectors
from boardfleet_agent.platform import detect
from boardfleet_agent.registry import Collector, all_collectors
from boardfleet_agent.source import LocalSource, SnapshotSource, Source

AGENTLESS = sorted(n for n, c in all_collectors().items() if c.agentless)
# (fixture board, collector) for every collector a probe runs on that board's platform.
PAIRS = [(board, cls.name) for board in BOARDS
         for cls in probed_collectors(detect(LocalSource(str(FIXTURES / board))))]
# A glob over PIDs: one read per process, never in a probe's plan.
PER_PID = "/[0-9]*/"  # a path component of PIDs (/proc/[0-9]*/..., kgsl/proc/[0-9]*/...)


class LocalShell:
    """The session pool's ``run``, executed by the busybox sh the boards have."""

    def run(self, board: Board, command: str, timeout: float) -> str:
        busybox = shutil.which("busybox")
        sh = [busybox, "sh"] if busybox else ["sh"]
        return subprocess.run([*sh, "-c", command], capture_output=True, text=True,
                              timeout=timeout, check=True).stdout


class LocalFiles(LocalSource):
    """The board's files read directly, and nothing else a snapshot cannot give either
    (vendor tools, statvfs, links, directory listings and identities)."""

    name = SnapshotSource.name
    readlink = Source.readlink
    identity = Source.identity
    listdir = Source.listdir
    statvfs = Source.statvfs
    run_tool = Source.run_tool


class _Fixed:
    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self) -> list:
        return self.families


def outcome(collector: Collector, src: Source) -> tuple:
    """(exposition text of what the collector yielded, its exception type and message)."""
    families, error = [], None
    try:
        for fam in collector.collect(src):
            families.append(fam)
    except Exception as e:  # the runner serves what came before a failure
        error = (type(e).__name__, str(e).replace(str(FIXTURES), "<sysroot>"))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))  # type: ignore[arg-type]
    return generate_latest(registry).decode(), error


@pytest.mark.parametrize("name", AGENTLESS)
def test_plan_reads_no_file_per_process(name: str) -> None:
    cls = all_collectors()[name]
    assert not [p for p in cls.paths if PER_PID in p], cls.paths


@pytest.mark.parametrize(("board", "name"), PAIRS)
def test_snapshot_of_the_plan_gives_what_local_files_give(board: str, name: str) -> None:
    root = FIXTURES / board
    platform = detect(LocalSource(str(root)))
    cls = all_collectors()[name]
    prober = Prober(pool=LocalShell())  # type: ignore[arg-type]
    target = Board(name=board, host="127.0.0.1", sysroot=str(root), platform=platform)
    _, classes, patterns = prober.plan(target)
    planned = sorted({str(root) + p for p in cls.paths})
    assert cls in classes and set(patterns) >= set(planned)
    snap = prober.snapshot(target, planned, time.monotonic() + 60)
    local = outcome(probe_collector(cls, platform), LocalFiles(str(root)))
    remote = outcome(probe_collector(cls, platform), snap)
    assert remote == local


def test_every_agentless_collector_is_checked_on_some_fixture() -> None:
    assert {name for _, name in PAIRS} == set(AGENTLESS)
