"""The board renderer writes exactly what prometheus_client's generate_latest writes."""

from typing import List

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

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
        labels = draw(LABEL_NAMES)
        kind = GaugeMetricFamily if i % 2 else CounterMetricFamily
        fam = kind(name, draw(TEXT), labels=labels)
        for _ in range(draw(st.integers(0, 4))):
            fam.add_metric([draw(TEXT) for _ in labels], draw(VALUES))
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


def test_other_kinds_fall_back_to_generate_latest() -> None:
    reg = CollectorRegistry(auto_describe=False)
    Histogram("board_x_seconds", "x", registry=reg).observe(0.3)
    fams = list(reg.collect())
    assert render(fams) == generate_latest(reg)
    assert b"board_x_seconds_bucket{le=\"0.5\"} 1.0" in render(fams)
