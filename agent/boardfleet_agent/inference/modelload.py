"""Model-load profiling from app events: load time and accelerator memory increase.

An app sends ``model_load_begin:1|c|#model:M,stage:S,pid:P`` before it loads a model
and ``model_load:<ms>|ms|#model:M,stage:S,pid:P`` after. The difference of the
accelerator memory ``P`` holds after and before is kept, like the "memory increase" of a
Qualcomm AI Hub profile job.

No event reads board files: "before" is the collectors' last sample taken before the
begin event (:class:`~boardfleet_agent.procs.PidMemory`), "after" the first one whose
every kind was sampled after the end event; the increase appears once that sample is in.
"""

import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.procs import PidMemory

STAGES = ("first", "warm")
# Begin events waiting for their end event; the oldest is forgotten beyond this.
MAX_PENDING = 64
# Seconds an ended load waits for a sample taken after it before it is given up on.
MAX_WAIT = 600.0

Key = Tuple[str, str]


class ModelLoads:
    """``board_model_load_seconds`` and ``board_model_memory_increase_bytes``.

    ``memory`` holds the sampled bytes per PID; ``alive(pid)`` tells whether the PID is
    a process of this board (memory of others is unknown, not zero).
    """

    def __init__(self, memory: PidMemory, alive: Callable[[int], bool],
                 max_models: int = 50) -> None:
        self.memory = memory
        self.alive = alive
        self.max_models = max_models
        self._pending: Dict[Tuple[str, str, int], int] = {}
        # Ended loads waiting for an "after" sample: (before, monotonic end time).
        self._ended: Dict[Tuple[str, str, int], Tuple[int, float]] = {}
        self._seconds: Dict[Key, float] = {}
        self._increase: Dict[Key, int] = {}
        self._lock = threading.Lock()

    def begin(self, model: str, stage: str, pid: Optional[int]) -> Optional[str]:
        """Note a load about to start; return a reject reason or None."""
        reason = self._check(model, stage)
        if reason or pid is None:
            return reason
        before = self.memory.bytes_of(pid)
        if before is not None and self.alive(pid):
            with self._lock:
                self._pending.pop((model, stage, pid), None)
                self._pending[(model, stage, pid)] = before
                _trim(self._pending)
        return None

    def end(self, model: str, stage: str, pid: Optional[int], seconds: float) -> Optional[str]:
        """Record a finished load; return a reject reason or None."""
        reason = self._check(model, stage)
        if reason:
            return reason
        with self._lock:
            self._seconds[(model, stage)] = seconds
            before = self._pending.pop((model, stage, pid), None) if pid is not None else None
            if before is not None and pid is not None:
                self._ended.pop((model, stage, pid), None)
                self._ended[(model, stage, pid)] = (before, time.monotonic())
                _trim(self._ended)
        return None

    def resolve(self) -> None:
        """Turn ended loads into increases once memory was sampled after their end.

        Called by :class:`PidMemory` after each publish (on a collector's thread).
        """
        with self._lock:
            ended = list(self._ended.items())
        now = time.monotonic()
        # (load, end time, bytes after minus before; None: no sample came in time)
        done: List[Tuple[Tuple[str, str, int], float, Optional[int]]] = []
        for key, (before, at) in ended:
            after = self.memory.bytes_of(key[2], since=at)
            if after is not None:
                done.append((key, at, after - before))
            elif now - at > MAX_WAIT:
                done.append((key, at, None))
        with self._lock:
            for key, at, increase in done:
                if self._ended.get(key, (0, None))[1] != at:
                    continue  # the same load ended again meanwhile
                del self._ended[key]
                if increase is not None:
                    self._increase[key[:2]] = increase

    def _check(self, model: str, stage: str) -> Optional[str]:
        if stage not in STAGES:
            return "bad_label"
        with self._lock:
            known = {m for m, _ in self._seconds}
        if model not in known and len(known) >= self.max_models:
            return "too_many_models"
        return None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            seconds = sorted(self._seconds.items())
            increase = sorted(self._increase.items())
        for name, doc, rows in (
                ("board_model_load_seconds",
                 "Duration of the last model load reported by the app, by stage.", seconds),
                ("board_model_memory_increase_bytes",
                 "Accelerator memory of the loading process after minus before the load.",
                 increase)):
            if rows:
                fam = GaugeMetricFamily(name, doc, labels=["model", "stage"])
                for key, value in rows:
                    fam.add_metric(list(key), value)
                yield fam


def _trim(d: Dict[Tuple[str, str, int], Any]) -> None:
    """Forget the oldest entries (dicts keep insertion order) beyond MAX_PENDING."""
    while len(d) > MAX_PENDING:
        del d[next(iter(d))]
