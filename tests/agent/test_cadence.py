"""Reading ahead of the scraper's cadence (issue 18: p99 without staler values)."""

import time

from hypothesis import given
from hypothesis import strategies as st
from test_on_demand import Counting, wait_for

from boardfleet_agent import cadence
from boardfleet_agent.runner import ScrapeRunner
from boardfleet_agent.source import SnapshotSource


def test_evenly_spaced_scrapes_give_their_period() -> None:
    assert cadence.period([100.0, 115.0, 130.01, 144.99, 160.0]) == 15.0
    assert cadence.period([0.0, 5.0, 10.0, 15.0]) is None  # too few to trust
    assert cadence.period([0.0, 5.0, 10.0, 12.0, 15.0]) is None  # a second scraper
    assert cadence.period([0.0, 0.0, 0.0, 0.0, 0.0]) is None


def test_the_next_scrape_is_predicted_once_and_forgotten_when_the_scraper_goes() -> None:
    asks = [0.0, 10.0, 20.0, 30.0, 40.0]
    assert cadence.next_ask(asks, 41.0, None, 2.0) == 50.0
    # Read ahead for 50 already: the one after it.
    assert cadence.next_ask(asks, 49.96, 50.0, 2.0) == 60.0
    # The scrape at 50 is late: the next read ahead is for 60.
    assert cadence.next_ask(asks, 50.5, None, 2.0) == 60.0
    assert cadence.next_ask(asks, 61.0, None, 2.0) is None  # two missed: gone
    assert cadence.next_ask(asks, 41.0, None, 20.0) is None  # faster than the collectors


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=12),
       st.floats(-1e6, 1e6, allow_nan=False),
       st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
       st.floats(0.001, 1e3))
def test_any_ask_times_give_a_prediction_after_now_or_none(asks, now, done, min_period) -> None:
    got = cadence.next_ask(sorted(asks), now, done, min_period)
    assert got is None or got > now


def test_the_runner_reads_ahead_of_a_learned_cadence_with_no_scrape_waiting() -> None:
    counting = Counting({})
    runner = ScrapeRunner([counting], SnapshotSource({}), interval=0.05, on_demand=True)
    runner.start()
    try:
        runs = counting.runs
        now = time.monotonic()
        # Scrapes came every 0.5 s, the last just now (as the runner records them).
        runner._asks.extend(now - 0.5 * k for k in range(4, -1, -1))
        runner._scheduler.wake()  # re-plan, as it does after every round
        wait_for(lambda: counting.runs > runs, "a read ahead of the expected scrape")
        assert runner._read_for is not None and runner._read_for > now
        assert runner._wanted is None  # nobody asked: the scheduler read by itself
    finally:
        runner.stop()
