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
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from boardfleet_agent.outcome import Outcome, run_collector
from boardfleet_agent.registry import Collector
from boardfleet_agent.source import Source
from boardfleet_agent.wakeup import Wakeup

LateHandler = Callable[[Collector, Outcome], None]


class _Job:
    """Collectors to run in a row, and their outcomes so far."""

    __slots__ = ("collectors", "done", "outcomes", "src")

    def __init__(self, collectors: List[Collector], src: Source) -> None:
        self.collectors = collectors
        self.src = src
        self.done = False
        self.outcomes: Dict[str, Outcome] = {}


class _Worker:
    """A thread running jobs until it is told to stop or abandoned.

    A whole round is one job, so the caller and the worker hand over once per round,
    not once per collector.
    """

    def __init__(self, on_late: LateHandler, lock: threading.Lock) -> None:
        self.jobs: "queue.Queue[Optional[_Job]]" = queue.Queue()  # noqa: UP037 (3.8)
        self.abandoned = False
        # The collector running now and its monotonic start (guarded by ``lock``).
        self.current: Optional[Tuple[Collector, float]] = None
        # Waits on a pipe, not Event.wait(timeout): no wall-clock deadline (wakeup.py).
        # Only this thread writes and closes it; the caller stops looking at it first.
        self.wakeup = Wakeup()
        self._on_late = on_late
        self._lock = lock
        # Not a LoopThread: it blocks on its queue, its pipe wakes the caller, and an
        # abandoned worker ends after its late run, unasked.
        self.thread = threading.Thread(target=self._loop, name="collector-worker",
                                       daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        try:
            while True:
                job = self.jobs.get()
                if job is None or not self._run(job):
                    return
        finally:
            self.wakeup.close()

    def _run(self, job: _Job) -> bool:
        """Run the job's collectors; False if abandoned meanwhile (the thread ends)."""
        for collector in job.collectors:
            with self._lock:
                self.current = (collector, time.monotonic())
            outcome = run_collector(collector, job.src)
            with self._lock:
                self.current = None
                abandoned = self.abandoned
                if not abandoned:
                    job.outcomes[collector.name] = outcome
            if abandoned:
                # The caller gave up on this run: hand the result over and end, a
                # fresh worker has taken this one's place and the rest of the job.
                self._on_late(collector, outcome)
                return False
        with self._lock:
            job.done = True
            self.wakeup.wake()
        return True

    def wait(self, job: _Job, timeout: float) -> Optional[Collector]:
        """Wait for ``job``; the collector that overran ``timeout``, if one did.

        The worker is then abandoned: it finishes that run alone and ends.
        """
        while True:
            with self._lock:
                if job.done:
                    return None
                current = self.current
                left = timeout if current is None else current[1] + timeout - time.monotonic()
                if current is not None and left <= 0:
                    self.abandoned = True
                    return current[0]
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
    """Runs collectors in a row on a worker, waiting at most ``timeout`` seconds for each."""

    def __init__(self, timeout: float, on_late: LateHandler) -> None:
        self.timeout = timeout
        self._on_late = on_late
        self._lock = threading.Lock()
        self._worker: Optional[_Worker] = None
        self.timeouts: Dict[str, int] = {}  # runs given up on, per collector name

    def run(self, collectors: Sequence[Collector], src: Source) -> Dict[str, Outcome]:
        """Each collector's outcome, a ``stuck`` one for a run that overran the timeout.

        A run given up on goes on in the background and ends in ``on_late``; until it
        does, the collector is not run again (its outcome is ``stuck`` at once).
        """
        outcomes: Dict[str, Outcome] = {}
        todo = []
        for c in collectors:
            if is_stuck(c.name):
                outcomes[c.name] = timed_out(self.timeout)
            else:
                todo.append(c)
        while todo:
            if self._worker is None:
                self._worker = _Worker(self._late, self._lock)
            worker = self._worker
            job = _Job(todo, src)
            worker.jobs.put(job)
            overran = worker.wait(job, self.timeout)
            outcomes.update(job.outcomes)
            if overran is None:
                break
            mark_stuck(overran.name, time.monotonic() - self.timeout)
            self.timeouts[overran.name] = self.timeouts.get(overran.name, 0) + 1
            outcomes[overran.name] = timed_out(self.timeout)
            self._worker = None
            todo = todo[todo.index(overran) + 1:]
        return outcomes

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
