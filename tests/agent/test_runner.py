"""Collector isolation: a failing or absent collector never takes the scrape down."""

import re
import threading
import time
from typing import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from boardfleet_agent.errors import NoData, ParseError
from boardfleet_agent.registry import Collector
from boardfleet_agent.runner import ScrapeRunner
from boardfleet_agent.source import SnapshotSource, Source


class Good(Collector):
    name = "good"

    def collect(self, src: Source) -> Iterator[Metric]:
        yield GaugeMetricFamily("board_good", "ok", value=1)


class HalfThenBroken(Collector):
    name = "half"

    def collect(self, src: Source) -> Iterator[Metric]:
        yield GaugeMetricFamily("board_half", "partial", value=2)
        raise ParseError("truncated at line 3")


class Absent(Collector):
    name = "absent"

    def collect(self, src: Source) -> Iterator[Metric]:
        raise NoData("no such hardware")
        yield  # pragma: no cover


class Shared(Collector):
    name = "shared"

    def collect(self, src: Source) -> Iterator[Metric]:
        fam = GaugeMetricFamily("board_good", "ok", labels=["x"])
        fam.add_metric(["y"], 3)
        yield fam


def _scrape(runner: ScrapeRunner) -> str:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(runner)
    return generate_latest(reg).decode()


def test_failure_keeps_partial_output_and_marks_only_that_collector() -> None:
    runner = ScrapeRunner([Good({}), HalfThenBroken({}), Absent({})], SnapshotSource({}))
    text = _scrape(runner)
    assert "board_good 1.0" in text
    assert "board_half 2.0" in text
    assert 'board_collector_success{collector="half"} 0.0' in text
    assert 'board_collector_success{collector="good"} 1.0' in text
    assert 'collector="absent"' not in text


def test_same_family_from_two_collectors_is_exposed_once() -> None:
    text = _scrape(ScrapeRunner([Good({}), Shared({})], SnapshotSource({})))
    assert text.count("# TYPE board_good gauge") == 1
    assert 'board_good{x="y"} 3.0' in text


CACHED = GaugeMetricFamily("board_good", "ok", labels=["x"])
CACHED.add_metric(["cached"], 5)


class Cached(Collector):
    """Serves one family object again and again, as a background result is served."""

    name = "cached"

    def collect(self, src: Source) -> Iterator[Metric]:
        yield CACHED


def test_families_joined_on_every_scrape_leave_the_served_ones_as_they_were() -> None:
    runner = ScrapeRunner([Cached({}), Good({}), Shared({})], SnapshotSource({}))
    for _ in range(3):
        text = _scrape(runner)
        assert text.count("# TYPE board_good gauge") == 1
        assert text.count('board_good{x="cached"} 5.0') == 1
        assert 'board_good{x="y"} 3.0' in text
        assert [s.labels for s in CACHED.samples] == [{"x": "cached"}]


class Slow(Collector):
    name = "slow"
    background = True
    default_interval = 0.05

    def __init__(self, settings, platform="generic") -> None:
        super().__init__(settings, platform)
        self.runs = 0
        self.returned = 0  # runs whose read ended
        self.gate = threading.Event()

    def collect(self, src: Source) -> Iterator[Metric]:
        self.runs += 1
        self.gate.wait(60)
        self.returned += 1
        yield GaugeMetricFamily("board_slow_runs", "runs", value=self.runs)


def test_background_collector_never_blocks_a_scrape() -> None:
    slow = Slow({})
    runner = ScrapeRunner([Good({}), slow], SnapshotSource({}))
    runner.start()
    try:
        text = _scrape(runner)  # the sampler is stuck inside collect()
        assert slow.returned == 0  # the scrape did not wait for the read to end
        assert "board_good 1.0" in text and "board_slow_runs" not in text
        slow.gate.set()
        deadline = time.monotonic() + 5
        while "board_slow_runs" not in _scrape(runner) and time.monotonic() < deadline:
            time.sleep(0.02)
        text = _scrape(runner)
        assert "board_slow_runs" in text
        assert 'board_collector_success{collector="slow"} 1.0' in text
        # Served from the cache: repeated scrapes do not duplicate samples.
        assert [ln for ln in text.splitlines() if ln.startswith("board_slow_runs ")] == [
            "board_slow_runs 1.0"]
    finally:
        slow.gate.set()
        runner.stop()


class Counting(Collector):
    name = "counting"

    def __init__(self, settings, platform="generic") -> None:
        super().__init__(settings, platform)
        self.runs = 0

    def collect(self, src: Source) -> Iterator[Metric]:
        self.runs += 1
        yield GaugeMetricFamily("board_counting_runs", "runs", value=self.runs)


def test_scrapes_serve_the_last_sample_and_sampling_keeps_its_pace() -> None:
    counting = Counting({})
    # Counts against the time that really passed, never a rate a loaded machine may miss:
    # at most one run per 0.2 s (plus the start's), and runs keep coming.
    begun = time.monotonic()
    runner = ScrapeRunner([counting], SnapshotSource({}), interval=0.2)
    runner.start()
    try:
        assert counting.runs >= 1  # the start's sample
        bodies = {runner.exposition() for _ in range(500)}
        # 500 scrapes, yet the collector ran only at its 0.2 s pace.
        assert counting.runs <= 2 + (time.monotonic() - begun) / 0.2
        assert len(bodies) <= counting.runs
        before = counting.runs
        deadline = time.monotonic() + 30
        while counting.runs < before + 3:
            assert time.monotonic() < deadline, "sampling stopped"
            time.sleep(0.05)
        assert counting.runs <= 2 + (time.monotonic() - begun) / 0.2
        served = re.search(rb"^board_counting_runs (\S+)$", runner.exposition(), re.M)
        assert served is not None
        assert float(served.group(1)) >= counting.runs - 1  # the rendering follows
    finally:
        runner.stop()
