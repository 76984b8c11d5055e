"""Per-model latency histograms with a cardinality cap, cheap to update from a hot loop.

Observations only take a short lock and bump a bucket; a scrape copies the counters
under the same lock and builds the exposition afterwards, so it never holds up intake.
"""

import bisect
import math
import threading
from typing import Dict, List, Optional, Sequence, Tuple

from boardfleet_agent.families import HistogramMetricFamily

# Upper bounds in seconds (+Inf is added): 0.1 ms .. 1 ms and 100 ms .. 10 s in x2 / x2.5
# steps; from 1 ms to 100 ms each bound is at most 1.1 x the one below, so a p99 from
# histogram_quantile stays within 10 % of the truth where most models run.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0011, 0.00121, 0.00133, 0.00146, 0.0016,
           0.00176, 0.00193, 0.00212, 0.00233, 0.00256, 0.00281, 0.00309, 0.00339, 0.00372,
           0.00409, 0.00449, 0.00493, 0.00542, 0.00596, 0.00655, 0.0072, 0.00792, 0.00871,
           0.00958, 0.01, 0.011, 0.0121, 0.0133, 0.0146, 0.016, 0.0176, 0.0193, 0.0212,
           0.0233, 0.0256, 0.0281, 0.0309, 0.0339, 0.0372, 0.0409, 0.0449, 0.0493, 0.0542,
           0.0596, 0.0655, 0.072, 0.0792, 0.0871, 0.0958, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0)

Labels = Tuple[str, ...]


class _Series:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0.0] * (len(BUCKETS) + 1)
        self.total = 0.0


class LatencyHistograms:
    """``board_inference_latency_seconds`` by ``model`` plus the allowed extra tags.

    At most ``max_models`` distinct models and ``max_series`` label sets are stored,
    and at most ``max_series_per_model`` for one model, so that one model's tag values
    cannot lock every other model out; observations that would add more are refused
    with a reason instead. An observation that would make a count or sum infinite is
    refused too.
    """

    def __init__(self, extra_labels: Sequence[str] = (), max_models: int = 50,
                 max_series: int = 500, max_series_per_model: int = 50) -> None:
        self.label_names = ["model", *extra_labels]
        self.max_models = max_models
        self.max_series = max_series
        self.max_series_per_model = max_series_per_model
        self._series: Dict[Labels, _Series] = {}
        self._models: Dict[str, int] = {}
        self._lock = threading.Lock()

    def observe(self, labels: Labels, seconds: float, weight: float = 1.0) -> Optional[str]:
        """Add ``weight`` observations of ``seconds``; return a reject reason or None."""
        with self._lock:
            s = self._series.get(labels)
            if s is None:
                reason = self._admit(labels)
                if reason:
                    return reason
                s = self._series[labels] = _Series()
            total = s.total + seconds * weight
            if not math.isfinite(total):
                return "not_finite"
            s.counts[bisect.bisect_left(BUCKETS, seconds)] += weight
            s.total = total
        return None

    def _admit(self, labels: Labels) -> Optional[str]:
        model = labels[0]
        if model not in self._models and len(self._models) >= self.max_models:
            return "too_many_models"
        if len(self._series) >= self.max_series or (
                self._models.get(model, 0) >= self.max_series_per_model):
            return "too_many_series"
        self._models[model] = self._models.get(model, 0) + 1
        return None

    def snapshot(self) -> List[Tuple[Labels, List[float], float]]:
        with self._lock:
            return [(k, list(s.counts), s.total) for k, s in self._series.items()]

    def family(self) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(
            "board_inference_latency_seconds",
            "Latency of each inference reported by apps (StatsD timings).",
            labels=self.label_names)
        for labels, counts, total in sorted(self.snapshot()):
            buckets = []
            running = 0.0
            for bound, n in zip((*BUCKETS, float("inf")), counts):
                running += n
                buckets.append((_bound(bound), running))
            fam.add_metric(list(labels), buckets, total)
        return fam


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
