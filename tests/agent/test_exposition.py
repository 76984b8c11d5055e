"""The agent's renderer writes exactly what prometheus_client's generate_latest writes."""

from typing import List

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from boardfleet_agent.exposition import render

NAMES = st.from_regex(r"board_[a-z][a-z0-9_]{0,12}", fullmatch=True)
LABEL_NAMES = st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True),
                       min_size=0, max_size=3, unique=True)
VALUES = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-2**63, 2**63)
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@st.composite
def families(draw) -> List[Metric]:
    out: List[Metric] = []
    for i, name in enumerate(draw(st.lists(NAMES, max_size=4, unique=True))):
        labels = draw(LABEL_NAMES.filter(lambda ls: "le" not in ls))
        kind = (GaugeMetricFamily, CounterMetricFamily, HistogramMetricFamily)[i % 3]
        fam = kind(name, draw(TEXT), labels=labels)
        for _ in range(draw(st.integers(0, 4))):
            values = [draw(TEXT) for _ in labels]
            if kind is HistogramMetricFamily:
                bounds = sorted(draw(st.lists(st.floats(0, 100), max_size=4, unique=True)))
                counts = sorted(draw(st.lists(st.integers(0, 10**6), min_size=len(bounds) + 1,
                                              max_size=len(bounds) + 1)))
                buckets = [(repr(b), c) for b, c in zip(bounds, counts[:-1], strict=True)]
                fam.add_metric(values, [*buckets, ("+Inf", counts[-1])], draw(VALUES))
            else:
                fam.add_metric(values, draw(VALUES))
        out.append(fam)
    return out


class _Fams:
    def __init__(self, fams: List[Metric]) -> None:
        self.fams = fams

    def collect(self):
        return iter(self.fams)


@given(families())
def test_render_matches_generate_latest(fams: List[Metric]) -> None:
    assert render(fams) == generate_latest(_Fams(fams))


def test_families_with_created_samples_fall_back_to_generate_latest() -> None:
    reg = CollectorRegistry(auto_describe=False)
    Histogram("board_x_seconds", "x", registry=reg).observe(0.3)  # has _created
    fams = list(reg.collect())
    assert render(fams) == generate_latest(reg)
    assert b"board_x_seconds_bucket{le=\"0.5\"} 1.0" in render(fams)
    assert b"# TYPE board_x_seconds_created gauge" in render(fams)
