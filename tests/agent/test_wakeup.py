"""The sleep the samplers use: cut short by a wake from any thread, never by the clock."""

import threading
import time

from boardfleet_agent.wakeup import Wakeup


def test_a_wake_from_another_thread_ends_the_sleep_at_once() -> None:
    w = Wakeup()
    threading.Timer(0.1, w.wake).start()
    started = time.monotonic()
    assert w.sleep(120.0) is True
    assert time.monotonic() - started < 60.0  # the wake, not the end of the sleep
    w.close()


def test_a_wake_before_the_sleep_is_kept_once() -> None:
    w = Wakeup()
    for _ in range(3):
        w.wake()  # several wakes before a sleep count as one
    assert w.sleep(10.0) is True
    started = time.monotonic()
    assert w.sleep(0.2) is False
    assert time.monotonic() - started >= 0.19
    w.close()


def test_many_wakes_never_block_the_waker() -> None:
    w = Wakeup()
    for _ in range(100_000):  # far more than a pipe holds
        w.wake()
    assert w.sleep(0) is True
    w.close()
    w.close()  # closing twice is harmless
    w.wake()  # and so is waking a closed one
