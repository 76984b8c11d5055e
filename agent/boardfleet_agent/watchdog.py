"""Collector runs bounded in time: a blocked read costs its collector, not the sampler.

A read of a wedged sysfs/debugfs driver, a FIFO or a dead network mount can block in
the kernel for good, and a Python thread cannot be interrupted there. So collectors run
on a worker thread while the caller waits at most ``timeout`` seconds. When a run
overruns, the worker is abandoned to finish that run alone (its late result is handed
to ``on_late``) and a fresh worker takes the next collector. The caller never runs the
stuck collector again until its run returns, so at most one thread per collector can
be stuck: threads stay bounded by the number of collectors.
"""

import queue
import threading
import time
from typing import Callable, Dict, Optional

from boardfleet_agent.outcome import Outcome, run_collector
from boardfleet_agent.registry import Collector
from boardfleet_agent.source import Source
from boardfleet_agent.wakeup import Wakeup

# One worker's job: run ``collector`` once and report the outcome.
LateHandler = Callable[[Collector, Outcome], None]


class _Job:
    __slots__ = ("collector", "done", "outcome", "src")

    def __init__(self, collector: Collector, src: Source) -> None:
        self.collector = collector
        self.src = src
        self.done = threading.Event()
        self.outcome: Optional[Outcome] = None


class _Worker:
    """A thread running jobs one at a time until it is told to stop or abandoned."""

    def __init__(self, on_late: LateHandler, lock: threading.Lock) -> None:
        self.jobs: "queue.Queue[Optional[_Job]]" = queue.Queue()  # noqa: UP037 (3.8)
        self.abandoned = False
        # Waits on a pipe, not Event.wait(timeout): no wall-clock deadline (wakeup.py).
        # Only this thread writes and closes it; the caller stops looking at it first.
        self.wakeup = Wakeup()
        self._on_late = on_late
        self._lock = lock
        self.thread = threading.Thread(target=self._loop, name="collector-worker",
                                       daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    return
                outcome = run_collector(job.collector, job.src)
                with self._lock:
                    job.outcome = outcome
                    job.done.set()
                    abandoned = self.abandoned
                    if not abandoned:
                        self.wakeup.wake()
                if abandoned:
                    # The caller gave up on this run: hand the result over and end, a
                    # fresh worker has taken this one's place.
                    self._on_late(job.collector, outcome)
                    return
        finally:
            self.wakeup.close()

    def wait(self, job: "_Job", timeout: float) -> None:
        """Wait until ``job`` is done or ``timeout`` seconds passed (monotonic)."""
        end = time.monotonic() + timeout
        while not job.done.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            self.wakeup.sleep(left)


# Collectors (by name) with a run abandoned while blocked, process-wide: a runner built
# on SIGHUP must not start a second blocked read of the same collector.
_STUCK: Dict[str, float] = {}
_STUCK_LOCK = threading.Lock()


def stuck_collectors() -> Dict[str, float]:
    """Collector names with a blocked run, and since when (monotonic seconds)."""
    with _STUCK_LOCK:
        return dict(_STUCK)


def mark_stuck(name: str, since: float) -> None:
    with _STUCK_LOCK:
        _STUCK.setdefault(name, since)


def clear_stuck(name: str) -> None:
    with _STUCK_LOCK:
        _STUCK.pop(name, None)


def is_stuck(name: str) -> bool:
    with _STUCK_LOCK:
        return name in _STUCK


class DeadlineRunner:
    """Runs collectors one at a time, waiting at most ``timeout`` seconds for each."""

    def __init__(self, timeout: float, on_late: LateHandler) -> None:
        self.timeout = timeout
        self._on_late = on_late
        self._lock = threading.Lock()
        self._worker: Optional[_Worker] = None
        self.timeouts: Dict[str, int] = {}  # runs given up on, per collector name

    def run(self, collector: Collector, src: Source) -> Outcome:
        """The run's outcome, or a ``stuck`` one if it did not finish in time.

        A run given up on goes on in the background and ends in ``on_late``; until it
        does, the collector is not run again (its outcome is ``stuck`` at once).
        """
        name = collector.name
        if is_stuck(name):
            return timed_out(self.timeout)
        if self._worker is None:
            self._worker = _Worker(self._late, self._lock)
        worker = self._worker
        job = _Job(collector, src)
        worker.jobs.put(job)
        worker.wait(job, self.timeout)
        with self._lock:
            if job.done.is_set():
                assert job.outcome is not None
                return job.outcome
            worker.abandoned = True
            mark_stuck(name, time.monotonic() - self.timeout)
        self.timeouts[name] = self.timeouts.get(name, 0) + 1
        self._worker = None
        return timed_out(self.timeout)

    def _late(self, collector: Collector, outcome: Outcome) -> None:
        clear_stuck(collector.name)
        self._on_late(collector, outcome)

    def close(self) -> None:
        """Let the idle worker end (a stuck one ends when its read returns)."""
        if self._worker is not None:
            self._worker.jobs.put(None)
            self._worker = None


def timed_out(timeout: float) -> Outcome:
    """The outcome recorded for a run that overran ``timeout``."""
    return Outcome([], False, timeout, stuck=True,
                   error="no result within %gs (a read is blocked); not run again "
                         "until that run returns" % timeout)
