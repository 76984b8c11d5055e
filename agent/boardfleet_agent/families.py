"""Metric families without prometheus_client.

The same constructors, ``add_metric`` signatures and sample tuples as
``prometheus_client.core``'s Gauge-, Counter- and HistogramMetricFamily, for the
families the agent builds. Importing prometheus_client costs a board about 12 MiB
(it pulls ``http.server``, ``urllib``, ``wsgiref`` and ``ssl``); these cost nothing.
prometheus_client's ``generate_latest`` still renders them (agentless probes, tests).
"""

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple


class Sample(NamedTuple):
    """One sample, field for field as prometheus_client's."""

    name: str
    labels: Dict[str, str]
    value: float
    timestamp: Optional[float] = None
    exemplar: None = None


# Builds a Sample from all its fields without NamedTuple's Python-level __new__: a third
# of what adding a sample costs, and a scrape adds a hundred.
_new_sample = tuple.__new__


class Metric:
    """A metric family and its samples."""

    def __init__(self, name: str, documentation: str, typ: str, unit: str = "") -> None:
        if unit and not name.endswith("_" + unit):
            name += "_" + unit
        self.name = name
        self.documentation = documentation
        self.unit = unit
        self.type = "unknown" if typ == "untyped" else typ
        self.samples: List[Sample] = []

    def add_sample(self, name: str, labels: Dict[str, str], value: float,
                   timestamp: Optional[float] = None) -> None:
        self.samples.append(Sample(name, labels, value, timestamp))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Metric) and self.name == other.name
                and self.documentation == other.documentation and self.type == other.type
                and self.unit == other.unit and self.samples == other.samples)

    def __repr__(self) -> str:
        return "Metric(%s, %s, %s, %s, %s)" % (
            self.name, self.documentation, self.type, self.unit, self.samples)


class _Labelled(Metric):
    """A family whose samples are added with label values in ``labels`` order."""

    def __init__(self, name: str, documentation: str, typ: str,
                 labels: Optional[Sequence[str]], unit: str) -> None:
        super().__init__(name, documentation, typ, unit)
        self._labelnames = tuple(labels or ())

    def _labels(self, values: Sequence[str]) -> Dict[str, str]:
        return dict(zip(self._labelnames, values))


class GaugeMetricFamily(_Labelled):
    def __init__(self, name: str, documentation: str, value: Optional[float] = None,
                 labels: Optional[Sequence[str]] = None, unit: str = "") -> None:
        if labels is not None and value is not None:
            raise ValueError("Can only specify at most one of value and labels.")
        super().__init__(name, documentation, "gauge", labels, unit)
        if value is not None:
            self.add_metric([], value)

    def add_metric(self, labels: Sequence[str], value: float,
                   timestamp: Optional[float] = None) -> None:
        self.samples.append(_new_sample(Sample, (
            self.name, dict(zip(self._labelnames, labels)), value, timestamp, None)))


class CounterMetricFamily(_Labelled):
    def __init__(self, name: str, documentation: str, value: Optional[float] = None,
                 labels: Optional[Sequence[str]] = None, created: Optional[float] = None,
                 unit: str = "") -> None:
        if name.endswith("_total"):
            name = name[:-6]
        if labels is not None and value is not None:
            raise ValueError("Can only specify at most one of value and labels.")
        super().__init__(name, documentation, "counter", labels, unit)
        self._total = self.name + "_total"
        if value is not None:
            self.add_metric([], value, created)

    def add_metric(self, labels: Sequence[str], value: float, created: Optional[float] = None,
                   timestamp: Optional[float] = None) -> None:
        self.samples.append(_new_sample(Sample, (
            self._total, dict(zip(self._labelnames, labels)), value, timestamp, None)))
        if created is not None:
            self.samples.append(
                Sample(self.name + "_created", self._labels(labels), created, timestamp))


Buckets = Sequence[Tuple[str, float]]


class HistogramMetricFamily(_Labelled):
    def __init__(self, name: str, documentation: str, buckets: Optional[Buckets] = None,
                 sum_value: Optional[float] = None, labels: Optional[Sequence[str]] = None,
                 unit: str = "") -> None:
        if sum_value is not None and buckets is None:
            raise ValueError("sum value cannot be provided without buckets.")
        if labels is not None and buckets is not None:
            raise ValueError("Can only specify at most one of buckets and labels.")
        super().__init__(name, documentation, "histogram", labels, unit)
        if buckets is not None:
            self.add_metric([], buckets, sum_value)

    def add_metric(self, labels: Sequence[str], buckets: Buckets, sum_value: Optional[float],
                   timestamp: Optional[float] = None) -> None:
        """``buckets``: (upper bound, cumulative count) pairs, sorted, ``+Inf`` last."""
        for bound, count in buckets:
            self.samples.append(Sample(self.name + "_bucket",
                                       dict(self._labels(labels), le=bound), count, timestamp))
        # As prometheus_client: no sum and count when there are negative buckets.
        if float(buckets[0][0]) >= 0 and sum_value is not None:
            self.samples.append(
                Sample(self.name + "_count", self._labels(labels), buckets[-1][1], timestamp))
            self.samples.append(
                Sample(self.name + "_sum", self._labels(labels), sum_value, timestamp))
