"""Model-load profiling from app events: load time and accelerator memory increase.

An app sends ``model_load_begin:1|c|#model:M,stage:S,pid:P`` before it loads a model
and ``model_load:<ms>|ms|#model:M,stage:S,pid:P`` after. On the begin event the agent
reads the accelerator memory ``P`` holds; on the end event it reads it again and keeps
the difference, like the "memory increase" of a Qualcomm AI Hub profile job.
"""

import threading
from collections import OrderedDict
from typing import Callable, Dict, Iterator, Optional, Tuple

from prometheus_client.core import GaugeMetricFamily, Metric

STAGES = ("first", "warm")
# Begin events waiting for their end event; the oldest is forgotten beyond this.
MAX_PENDING = 64

Key = Tuple[str, str]


class ModelLoads:
    """``board_model_load_seconds`` and ``board_model_memory_increase_bytes``.

    ``memory_of(pid)`` returns the accelerator bytes ``pid`` holds, or None if unknown.
    """

    def __init__(self, memory_of: Callable[[int], Optional[int]],
                 max_models: int = 50) -> None:
        self.memory_of = memory_of
        self.max_models = max_models
        self._pending: Dict[Tuple[str, str, int], int] = OrderedDict()
        self._seconds: Dict[Key, float] = {}
        self._increase: Dict[Key, int] = {}
        self._lock = threading.Lock()

    def begin(self, model: str, stage: str, pid: Optional[int]) -> Optional[str]:
        """Note a load about to start; return a reject reason or None."""
        reason = self._check(model, stage)
        if reason or pid is None:
            return reason
        before = self.memory_of(pid)
        if before is not None:
            with self._lock:
                self._pending[(model, stage, pid)] = before
                while len(self._pending) > MAX_PENDING:
                    self._pending.popitem(last=False)
        return None

    def end(self, model: str, stage: str, pid: Optional[int], seconds: float) -> Optional[str]:
        """Record a finished load; return a reject reason or None."""
        reason = self._check(model, stage)
        if reason:
            return reason
        with self._lock:
            before = self._pending.pop((model, stage, pid), None) if pid is not None else None
        after = self.memory_of(pid) if before is not None and pid is not None else None
        with self._lock:
            self._seconds[(model, stage)] = seconds
            if before is not None and after is not None:
                self._increase[(model, stage)] = after - before
        return None

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
        if seconds:
            fam = GaugeMetricFamily(
                "board_model_load_seconds",
                "Duration of the last model load reported by the app, by stage.",
                labels=["model", "stage"])
            for key, value in seconds:
                fam.add_metric(list(key), value)
            yield fam
        if increase:
            fam = GaugeMetricFamily(
                "board_model_memory_increase_bytes",
                "Accelerator memory of the loading process after minus before the load.",
                labels=["model", "stage"])
            for key, value in increase:
                fam.add_metric(list(key), value)
            yield fam
