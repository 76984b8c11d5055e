"""Quick collectors sampled on demand (the agent's default, issue 18).

A scrape runs the due quick collectors and serves what they read then; an idle agent
reads nothing; scrapes within a collector's interval, or concurrent with a round, share
one round; a collector that blocks is given up on after the timeout, so a scrape still
answers and the scheduler stays healthy. Time bounds here are only generous "did not
hang" limits; every other check waits for an event.
"""

import re
import threading
import time
from typing import Iterator, List

from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.registry import Collector
from boardfleet_agent.runner import ScrapeRunner
from boardfleet_agent.source import SnapshotSource, Source

HANG = 30.0


class Counting(Collector):
    """Counts its runs; a run waits for ``gate`` (open unless a test closes it)."""

    name = "counting"

    def __init__(self, settings, platform="generic") -> None:
        super().__init__(settings, platform)
        self.runs = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def collect(self, src: Source) -> Iterator[Metric]:
        self.runs += 1
        self.entered.set()
        self.gate.wait(HANG)
        yield GaugeMetricFamily("board_counting_runs", "runs", value=self.runs)


class Good(Collector):
    name = "good"

    def collect(self, src: Source) -> Iterator[Metric]:
        yield GaugeMetricFamily("board_good", "ok", value=1)


def served(body: bytes, name: str) -> float:
    found = re.search(rb"^%s (\S+)$" % name.encode(), body, re.M)
    assert found is not None, body
    return float(found.group(1))


def wait_for(check, what: str) -> None:
    end = time.monotonic() + HANG
    while not check():
        assert time.monotonic() < end, "gave up waiting for " + what
        time.sleep(0.01)


def test_an_idle_agent_reads_nothing_and_a_scrape_reads_then() -> None:
    counting = Counting({})
    runner = ScrapeRunner([counting], SnapshotSource({}), interval=0.05, on_demand=True)
    runner.start()
    try:
        assert counting.runs == 1  # the start's round
        time.sleep(0.3)  # six intervals pass with no scrape
        assert counting.runs == 1
        body = runner.exposition()
        assert counting.runs == 2 and served(body, "board_counting_runs") == 2.0
        time.sleep(0.1)
        assert served(runner.exposition(), "board_counting_runs") == 3.0
    finally:
        runner.stop()


def test_scrapes_within_the_interval_share_one_round() -> None:
    counting = Counting({})
    runner = ScrapeRunner([counting], SnapshotSource({}), interval=3600, on_demand=True)
    runner.start()
    try:
        bodies = {runner.exposition() for _ in range(50)}
        assert counting.runs == 1 and len(bodies) == 1
    finally:
        runner.stop()


def test_concurrent_scrapes_wait_for_one_round_and_get_its_values() -> None:
    counting = Counting({})
    runner = ScrapeRunner([counting], SnapshotSource({}), interval=3600, on_demand=True)
    runner.start()
    try:
        counting.gate.clear()
        counting.entered.clear()
        runner.quick[0].due = 0.0  # due now
        got: List[bytes] = []
        scrapers = [threading.Thread(target=lambda: got.append(runner.exposition()))
                    for _ in range(10)]
        for t in scrapers:
            t.start()
        assert counting.entered.wait(HANG)
        counting.gate.set()
        for t in scrapers:
            t.join(HANG)
        assert counting.runs == 2
        assert [served(b, "board_counting_runs") for b in got] == [2.0] * 10
    finally:
        counting.gate.set()
        runner.stop()


def test_a_blocked_collector_is_given_up_and_scrapes_still_answer() -> None:
    counting = Counting({})
    runner = ScrapeRunner([counting, Good({})], SnapshotSource({}), interval=0.05,
                          timeout=0.2, on_demand=True)
    runner.start()
    try:
        counting.gate.clear()
        time.sleep(0.1)
        runner.exposition()  # waits at most for the watchdog
        wait_for(lambda: b'board_collector_success{collector="counting"} 0.0'
                 in runner.exposition(), "the blocked collector to be served as failed")
        body = runner.exposition()
        assert b'board_collector_timeouts_total{collector="counting"} 1.0' in body
        assert served(body, "board_good") == 1.0
        assert runner.healthy()[0]
        counting.gate.set()
        wait_for(lambda: b'board_collector_success{collector="counting"} 1.0'
                 in runner.exposition(), "the collector to come back")
    finally:
        counting.gate.set()
        runner.stop()


def test_an_idle_agent_starts_no_watchdog_and_stays_healthy() -> None:
    runner = ScrapeRunner([Good({})], SnapshotSource({}), timeout=5.0, on_demand=True)
    runner.stall_after = 0.3
    runner.start()
    try:
        # The waiting scrape watches a round: no watchdog thread, no wakes while idle.
        assert "sampling-watchdog" not in [t.name for t in threading.enumerate()]
        time.sleep(2 * runner.stall_after)  # no scrape, no round: not a stall
        assert runner.healthy() == (True, "sampling")
    finally:
        runner.stop()


def test_the_start_up_worker_ends_after_the_first_round() -> None:
    def workers() -> set:
        return {t.ident for t in threading.enumerate() if t.name == "collector-worker"}

    earlier = workers()  # other runners' (a stuck run's worker ends when its read does)
    runner = ScrapeRunner([Good({})], SnapshotSource({}), timeout=5.0, on_demand=True)
    runner.start()
    try:
        assert b"board_good 1.0" in runner.exposition()
        wait_for(lambda: not workers() - earlier, "the start-up round's worker to end")
    finally:
        runner.stop()


def test_a_scrape_left_waiting_fails_health_until_served() -> None:
    counting = Counting({})
    # No timeout: nothing gives the blocked round up.
    runner = ScrapeRunner([counting], SnapshotSource({}), interval=0.05, on_demand=True)
    runner.start()
    runner.stall_after = 0.3
    scraper = None
    try:
        counting.gate.clear()
        counting.entered.clear()
        runner.quick[0].due = 0.0
        scraper = threading.Thread(target=runner.exposition)
        scraper.start()
        assert counting.entered.wait(HANG)
        wait_for(lambda: not runner.healthy()[0], "health to fail")
        assert "a scrape waits for one" in runner.healthy()[1]
        counting.gate.set()
        scraper.join(HANG)
        assert runner.healthy() == (True, "sampling")
    finally:
        counting.gate.set()
        runner.stop()
        if scraper is not None:
            scraper.join(HANG)


def test_stopping_releases_a_scrape_waiting_for_a_round() -> None:
    counting = Counting({})
    runner = ScrapeRunner([counting], SnapshotSource({}), interval=3600, on_demand=True)
    runner.start()
    try:
        counting.gate.clear()
        counting.entered.clear()
        runner.quick[0].due = 0.0
        got: List[bytes] = []
        scraper = threading.Thread(target=lambda: got.append(runner.exposition()))
        scraper.start()
        assert counting.entered.wait(HANG)
        runner.stop()  # the round is still blocked: the scrape gets the last rendering
        scraper.join(5.0)  # a scrape would otherwise wait 8.5 s for the round
        assert not scraper.is_alive()
        assert [served(b, "board_counting_runs") for b in got] == [1.0]
        assert served(runner.exposition(), "board_counting_runs") == 1.0  # no wait
    finally:
        counting.gate.set()


def test_a_scrape_during_a_rounds_rendering_waits_for_it(monkeypatch) -> None:
    """Every collector has read (none is due) but the round's text is not served yet:
    a scrape then must wait for that text, not take the previous round's."""
    import boardfleet_agent.runner as runner_module

    counting = Counting({})
    runner = ScrapeRunner([counting], SnapshotSource({}), interval=0.05, on_demand=True)
    runner.start()
    rendering, release = threading.Event(), threading.Event()
    real_render = runner_module.render

    def slow_render(families):
        if threading.current_thread().name != "MainThread" and not release.is_set():
            rendering.set()
            release.wait(HANG)
        return real_render(families)

    monkeypatch.setattr(runner_module, "render", slow_render)
    try:
        time.sleep(0.1)  # the start's reading is due again
        first: List[bytes] = []
        asker = threading.Thread(target=lambda: first.append(runner.exposition()))
        asker.start()
        assert rendering.wait(HANG), "the scrape's round did not render"
        runner._planned = None  # no read ahead meanwhile
        second: List[bytes] = []
        late = threading.Thread(target=lambda: second.append(runner.exposition()))
        late.start()
        late.join(0.2)
        assert not second  # it waits for the round under way
        release.set()
        asker.join(HANG)
        late.join(HANG)
        # That round's values or a later round's (the collector may be due again by
        # then), never the previous round's.
        assert served(first[0], "board_counting_runs") >= 2.0
        assert served(second[0], "board_counting_runs") >= served(first[0], "board_counting_runs")
    finally:
        release.set()
        runner.stop()
