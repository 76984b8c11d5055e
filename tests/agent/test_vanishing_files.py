"""Sysroot files that vanish and come back while the agent scrapes (issue 8).

On a board a ``/proc/<pid>`` directory goes between listing and reading, thermal zones
and hwmon devices come and go with modules, and vendor files (``/proc/media-mem``,
``/proc/umap``, ION and dma-buf debugfs, kgsl and BPU sysfs) vanish when a driver is
unloaded and return when it is reloaded. Each fixture board is copied; hypothesis picks
files and directories of the copy to move away (right after a chosen read or listing of
a scrape, or from a thread racing the scrapes) and back.
"""

import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Set

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from support.agent import served_agent, stable_lines
from support.paths import BOARDS, FIXTURES
from support.vanish import TriggerSource, Vanisher, board_paths, covered, matches, touches

from boardfleet_agent.collectors.hisi_ddr import HisiDdrCollector
from boardfleet_agent.collectors.horizon_ddr import HorizonDdrCollector
from boardfleet_agent.platform import detect
from boardfleet_agent.registry import Collector, collectors_for
from boardfleet_agent.runner import ScrapeRunner
from boardfleet_agent.source import LocalSource, vanished

# Reads beyond a collector's ``paths`` (which lists what an agentless probe can fetch).
EXTRA_READS = {"dmabuf_process": ("/proc/[0-9]*/fd/*",)}

# What comes and goes one at a time on a running board: a vanished one is skipped.
ITEMS = (
    "/proc/[0-9]*", "/proc/[0-9]*/fd/*", "/proc/[0-9]*/fdinfo/*",
    "/sys/class/thermal/thermal_zone*", "/sys/class/hwmon/hwmon*",
    "/sys/devices/system/cpu/cpu[0-9]*/cpufreq", "/sys/class/kgsl/kgsl/proc/[0-9]*",
    "/sys/kernel/debug/ion/heaps/*", "/sys/devices/system/bpu/bpu[0-9]*",
)

# A driver's files and the collectors they feed: unloading it makes those absent.
DRIVERS = {
    "/proc/media-mem": ("mmz",),
    "/proc/umap": ("mmz", "hisi_npu", "hisi_vb"),
    "/proc/umap/media-mem": ("mmz",),
    "/proc/umap/vb": ("hisi_vb",),
    "/proc/umap/ive": ("hisi_npu",),
    "/proc/umap/svp_nnn": ("hisi_npu",),
    "/sys/devices/system/bpu": ("bpu",),
    "/sys/kernel/debug": ("dmabuf", "horizon_ddr", "ion"),
    "/sys/kernel/debug/ion": ("ion",),
    "/sys/kernel/debug/axi_mon": ("horizon_ddr",),
    "/sys/kernel/debug/dma_buf": ("dmabuf",),
    "/sys/class/kgsl": ("kgsl",),
    "/sys/devices/system/cpu/bus_dcvs": ("qcom_ddr",),
}
DRIVER_BOARDS = [b for b in BOARDS
                 if any((FIXTURES / b / p.lstrip("/")).exists() for p in DRIVERS)]


def render(runner: ScrapeRunner) -> str:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(runner)
    return generate_latest(reg).decode()


def success(text: str) -> Dict[str, str]:
    """``{collector: "1.0" | "0.0"}`` from the ``board_collector_success`` lines."""
    return {line.split('"')[1]: line.rsplit(" ", 1)[1] for line in text.splitlines()
            if line.startswith("board_collector_success{")}


def sample_lines(text: str) -> Set[str]:
    return {ln for ln in stable_lines(text).splitlines() if ln and not ln.startswith("#")}


def runs_tool(cls: type, src: LocalSource) -> bool:
    """Would run a vendor tool here (about a second a run); tested on its own below."""
    return cls is HisiDdrCollector or (
        cls is HorizonDdrCollector and src.find_tool("hrut_ddr") is not None)


class Board:
    """A fixture board's copy, its collectors and one long-lived runner, as in the agent."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stash = root.parent / (root.name + ".stash")
        self.src = TriggerSource(str(root))
        platform = detect(self.src)
        self.collectors: List[Collector] = [
            cls({}, platform=platform) for cls in collectors_for(platform, {})
            if not runs_tool(cls, self.src)]
        self.runner = ScrapeRunner(self.collectors, self.src, background=False)
        self.files, dirs = board_paths(root)
        self.entries = [p for p in self.files + dirs if p.startswith(("/proc", "/sys"))]
        self.src.arm()
        text = self.scrape()
        self.trace = self.src.trace  # reads, listings and checks of an undisturbed scrape
        self.baseline = stable_lines(text)
        self.status = success(text)
        # Each collector's series on its own: what an undisturbed collector must still show.
        self.lines = {c.name: sample_lines(render(ScrapeRunner([c], LocalSource(str(root)),
                                                               background=False)))
                      for c in self.collectors}

    def scrape(self) -> str:
        return render(self.runner)

    def moments(self, vanished: Iterable[str]) -> st.SearchStrategy[int]:
        """When to vanish: right after an operation that looked at a vanishing path
        (mostly), or after any operation of the scrape."""
        gone = list(vanished)
        near = [i + 1 for i, what in enumerate(self.trace)
                if any(touches(what, v, self.entries) for v in gone)]
        anywhere = st.integers(1, len(self.trace))
        return st.one_of(st.sampled_from(near), anywhere) if near else anywhere

    def affected(self, vanished: Iterable[str]) -> Set[str]:
        """Collectors that read something under the vanished paths."""
        gone = list(vanished)
        return {c.name for c in self.collectors
                if covered(self.files, gone,
                           (*c.paths, *c.process_paths, *EXTRA_READS.get(c.name, ())))}

    def vanish_at(self, paths: Iterable[str], at: int) -> str:
        """A scrape during which ``paths`` vanish right after operation ``at``; restored."""
        gone = Vanisher(self.root, self.stash, paths)
        self.src.arm(at, gone.away)
        try:
            return self.scrape()
        finally:
            gone.back()
            self.src.arm()


@pytest.fixture(scope="module", params=BOARDS)
def board(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Board:
    root = tmp_path_factory.mktemp("vanish") / request.param
    shutil.copytree(str(FIXTURES / request.param), str(root), symlinks=True)
    return Board(root)


def assert_sound(board: Board, text: str, affected: Set[str]) -> Dict[str, str]:
    """Parses, no series or family twice, collectors that lost nothing are untouched."""
    families = list(text_string_to_metric_families(text))
    series = [(s.name, tuple(sorted(s.labels.items()))) for f in families for s in f.samples]
    assert len(series) == len(set(series)), "a series is exposed twice"
    helps = [ln.split()[2] for ln in text.splitlines() if ln.startswith("# HELP ")]
    assert len(helps) == len(set(helps)), "a family is exposed twice"
    status = success(text)
    lines = set(text.splitlines())
    for c in board.collectors:
        if c.name not in affected:
            assert status.get(c.name) == board.status.get(c.name), c.name
            assert board.lines[c.name] <= lines, c.name
    return status


def assert_restored(board: Board) -> None:
    """The paths are back: the next scrape is the undisturbed one (nothing stale)."""
    assert stable_lines(board.scrape()) == board.baseline


@settings(max_examples=30)
@given(data=st.data())
def test_paths_vanishing_at_any_point_of_a_scrape(board: Board, data: st.DataObject) -> None:
    paths = data.draw(st.lists(st.sampled_from(board.entries), min_size=1, max_size=3,
                               unique=True), label="paths")
    at = data.draw(board.moments(paths), label="after operation")
    text = board.vanish_at(paths, at)
    assert_sound(board, text, board.affected(paths))
    assert_restored(board)


@settings(max_examples=20)
@given(data=st.data())
def test_an_item_vanishing_between_listing_and_reading_is_skipped(
        board: Board, data: st.DataObject) -> None:
    """A process exits, a zone or a core or a heap goes: no collector fails for it."""
    items = [p for p in board.entries if any(matches(p, g) for g in ITEMS)]
    item = data.draw(st.sampled_from(items), label="item")
    at = data.draw(board.moments([item]), label="after operation")
    status = assert_sound(board, board.vanish_at([item], at), board.affected([item]))
    assert "0.0" not in status.values(), status
    assert_restored(board)


@pytest.mark.parametrize("board", DRIVER_BOARDS, indirect=True)
@settings(max_examples=20)
@given(data=st.data())
def test_an_unloaded_driver_makes_its_collectors_absent(board: Board,
                                                        data: st.DataObject) -> None:
    """Mid-scrape, a collector whose driver goes is absent, or complete if read before."""
    driver = data.draw(st.sampled_from(sorted(p for p in DRIVERS if p in board.entries)),
                       label="driver")
    at = data.draw(board.moments([driver]), label="after operation")
    text = board.vanish_at([driver], at)
    status = assert_sound(board, text, board.affected([driver]))
    assert "0.0" not in status.values(), status
    lines = set(text.splitlines())
    for owner in DRIVERS[driver]:
        if owner not in board.lines:
            continue  # not run on this board
        if owner in status:
            assert board.lines[owner] <= lines, owner
        else:
            assert not board.lines[owner] & lines, owner
    assert_restored(board)


@settings(max_examples=5)
@given(data=st.data())
def test_paths_vanishing_and_returning_while_a_thread_races_the_scrapes(
        board: Board, data: st.DataObject) -> None:
    paths = data.draw(st.lists(st.sampled_from(board.entries), min_size=1, max_size=3,
                               unique=True), label="paths")
    gone = Vanisher(board.root, board.stash, paths)
    stop = threading.Event()
    toggles: List[int] = []
    errors: List[BaseException] = []

    def race() -> None:
        try:
            while not stop.is_set():
                gone.away()
                stop.wait(0.0005)
                gone.back()
                toggles.append(1)
                stop.wait(0.0005)
        except BaseException as e:  # reported by the test, not lost in the thread
            errors.append(e)

    racer = threading.Thread(target=race, name="vanisher")
    racer.start()
    try:
        texts = [board.scrape() for _ in range(6)]
    finally:
        stop.set()
        racer.join()
        gone.back()
    assert errors == [] and toggles
    affected = board.affected(paths)
    for text in texts:
        assert_sound(board, text, affected)
    assert_restored(board)


@pytest.mark.parametrize(("name", "cls", "tool"), [
    ("hi3516ev200", HisiDdrCollector, "/usr/bin/hiddrs"),
    ("x3", HorizonDdrCollector, "/usr/bin/hrut_ddr"),
])
def test_a_vendor_tool_vanishing_before_it_starts_leaves_its_collector_absent(
        tmp_path: Path, name: str, cls: type, tool: str) -> None:
    root = tmp_path / name
    shutil.copytree(str(FIXTURES / name), str(root), symlinks=True)
    src = TriggerSource(str(root))
    collector = cls({"samples": 1}, platform=detect(src))
    runner = ScrapeRunner([collector], src, background=False)
    src.arm()
    before = render(runner)
    assert success(before) == {collector.name: "1.0"}
    found = src.ops  # the last operation is the lookup that found the tool
    gone = Vanisher(root, tmp_path / "stash", [tool])
    src.arm(found, gone.away)
    try:
        during = render(runner)
    finally:
        gone.back()
        src.arm()
    assert success(during) == {}
    assert stable_lines(render(runner)) == stable_lines(before)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def _poll(url: str, done: Callable[[str], bool], seen: List[str], timeout: float = 8.0) -> str:
    """Scrape until ``done(text)``; every body goes into ``seen``."""
    deadline = time.monotonic() + timeout
    while True:
        seen.append(_get(url))
        if done(seen[-1]) or time.monotonic() > deadline:
            return seen[-1]
        time.sleep(0.1)


def test_a_served_agent_follows_a_driver_and_a_process_that_go_and_return(
        tmp_path: Path) -> None:
    root = tmp_path / "x5"
    shutil.copytree(str(FIXTURES / "x5"), str(root), symlinks=True)

    def about(text: str) -> List[str]:
        return [ln for ln in text.splitlines() if not ln.startswith("#") and (
            'accelerator="bpu"' in ln or ln.startswith('board_collector_success{collector="bpu"}')
            or "board_process_" in ln)]

    seen: List[str] = []
    with served_agent(str(root)) as (base, _):
        url = base + "/metrics"
        before = about(_poll(url, about, seen))
        assert any('accelerator="bpu"' in ln for ln in before)
        assert any('process="hrt_model_exec"' in ln for ln in before)
        gone = Vanisher(root, tmp_path / "stash", ["/sys/devices/system/bpu", "/proc/1234"])
        gone.away()
        try:
            during = _poll(url, lambda t: not about(t), seen)
        finally:
            gone.back()
        assert about(during) == []
        after = _poll(url, lambda t: about(t) == before, seen)
        assert about(after) == before
    failing = {ln for text in seen for ln in text.splitlines()
               if ln.startswith("board_collector_success") and ln.endswith(" 0.0")}
    assert failing == set()


def test_a_proc_file_read_after_its_process_exited_counts_as_vanished() -> None:
    """The kernel answers ESRCH, not ENOENT, for an open /proc/<pid> file of a dead process."""
    child = subprocess.Popen(["sleep", "60"])
    path = "/proc/%d/stat" % child.pid
    with open(path, "rb") as f:
        child.kill()
        child.wait()
        with pytest.raises(OSError) as gone:
            f.read()
    assert vanished(gone.value, path)
    with pytest.raises(FileNotFoundError):
        LocalSource("/").read_text(path)


def test_a_file_that_is_there_but_cannot_be_read_is_a_fault_not_a_vanish(
        tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    with pytest.raises(IsADirectoryError) as fault:
        LocalSource(str(tmp_path)).read_text("/proc")
    assert not vanished(fault.value, str(tmp_path / "proc"))
