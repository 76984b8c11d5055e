"""LoopThread, the agent's background loop: stops cleanly in any order, leaks no fds.

Time bounds here are only generous "did not hang" limits; every check waits for an event.
"""

import os
import threading
import time
from typing import Callable, List

import pytest

from boardfleet_agent.threads import LoopThread

HANG = 30.0  # seconds after which a test calls something hung (never reached when it works)


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_for(check: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + HANG
    while not check():
        assert time.monotonic() < end, "timed out waiting for " + what
        time.sleep(0.01)


def test_steps_run_on_a_named_thread_and_a_wake_ends_a_sleep() -> None:
    names: List[str] = []
    before = fds()
    loop = LoopThread("worker-x", lambda: names.append(threading.current_thread().name))
    loop.start()
    wait_for(lambda: len(names) == 1, "the first step")
    assert fds() == before + 2  # the wakeup pipe, while the thread runs
    loop.wake()  # the step sleeps until woken (it returns None)
    wait_for(lambda: len(names) == 2, "the step after the wake")
    assert loop.stop(HANG) and not loop.alive
    assert names[0] == "worker-x" and fds() == before


def test_stop_before_start_opens_nothing_and_start_then_does_nothing() -> None:
    ran = threading.Event()
    before = fds()
    loop = LoopThread("never", lambda: ran.set() or 1.0)
    assert loop.stop(HANG)
    loop.start()
    loop.wake()
    assert not loop.alive and not ran.is_set() and fds() == before


def test_stop_twice() -> None:
    before = fds()
    loop = LoopThread("twice", lambda: None)
    loop.start()
    assert loop.stop(HANG)
    assert loop.stop(HANG)
    loop.wake()  # after the end: a no-op on a closed pipe
    assert fds() == before


def test_a_step_that_raises_is_logged_and_ends_the_thread_closing_its_pipe(
        caplog: pytest.LogCaptureFixture) -> None:
    def step() -> float:
        raise ValueError("bad sample")

    before = fds()
    loop = LoopThread("raiser", step)
    loop.start()
    wait_for(lambda: not loop.alive, "the thread to end")
    assert fds() == before
    failed = [r for r in caplog.records if r.getMessage() == "thread raiser failed and ended"]
    assert failed and failed[0].exc_info is not None
    assert "bad sample" in str(failed[0].exc_info[1])
    assert loop.stop(HANG)


def test_a_stop_that_gives_up_leaves_the_pipe_to_the_thread() -> None:
    """A step blocked in a read: stop returns, the thread closes its pipe when it ends."""
    entered, release = threading.Event(), threading.Event()
    steps: List[int] = []

    def step() -> float:
        steps.append(1)
        entered.set()
        release.wait(HANG)
        return 0.0

    before = fds()
    loop = LoopThread("stuck", step)
    loop.start()
    assert entered.wait(HANG)
    assert loop.stop(0.0) is False and loop.alive
    loop.wake()  # a late wake while it is still blocked
    assert fds() == before + 2
    release.set()
    wait_for(lambda: not loop.alive, "the blocked step to return")
    assert fds() == before and steps == [1]  # no step after the stop
