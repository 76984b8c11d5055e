"""The agent's renderer and families give exactly what prometheus_client's give.

prometheus_client is the reference here only: the agent does not import it.
"""

import os
import subprocess
import sys
from typing import List

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
)
from support.paths import REPO

from boardfleet_agent import exposition
from boardfleet_agent import families as ours
from boardfleet_agent.exposition import render
from boardfleet_agent.selfstats import SelfStats

NAMES = st.from_regex(r"board_[a-z][a-z0-9_]{0,12}", fullmatch=True)
LABEL_NAMES = st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True),
                       min_size=0, max_size=3, unique=True)
VALUES = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-2**63, 2**63)
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


THEIRS = (GaugeMetricFamily, CounterMetricFamily, HistogramMetricFamily)
OURS = (ours.GaugeMetricFamily, ours.CounterMetricFamily, ours.HistogramMetricFamily)


@st.composite
def specs(draw) -> list:
    """Families as constructor and ``add_metric`` calls: (kind, name, doc, labels, calls)."""
    out = []
    for i, name in enumerate(draw(st.lists(NAMES, max_size=4, unique=True))):
        labels = draw(LABEL_NAMES.filter(lambda ls: "le" not in ls))
        calls = []
        for _ in range(draw(st.integers(0, 4))):
            values = [draw(TEXT) for _ in labels]
            if i % 3 == 2:
                bounds = sorted(draw(st.lists(st.floats(0, 100), max_size=4, unique=True)))
                counts = sorted(draw(st.lists(st.integers(0, 10**6), min_size=len(bounds) + 1,
                                              max_size=len(bounds) + 1)))
                buckets = [(repr(b), c) for b, c in zip(bounds, counts[:-1], strict=True)]
                calls.append(((values, [*buckets, ("+Inf", counts[-1])], draw(VALUES)), {}))
            elif i % 3 == 1:
                calls.append(((values, draw(VALUES)), {
                    "created": draw(st.none() | VALUES),
                    "timestamp": draw(st.none() | st.floats(0, 2e9))}))
            else:
                calls.append(((values, draw(VALUES)), {}))
        out.append((i % 3, name, draw(TEXT), labels, calls))
    return out


def build(spec: list, kinds: tuple = THEIRS) -> list:
    out = []
    for kind, name, doc, labels, calls in spec:
        fam = kinds[kind](name, doc, labels=labels)
        for args, kwargs in calls:
            fam.add_metric(*args, **kwargs)
        out.append(fam)
    return out


class _Fams:
    def __init__(self, fams: List[Metric]) -> None:
        self.fams = fams

    def collect(self):
        return iter(self.fams)


@given(specs())
def test_render_matches_generate_latest(spec: list) -> None:
    fams = build(spec)
    assert render(fams) == generate_latest(_Fams(fams))


@given(specs())
def test_agent_families_hold_prometheus_client_samples(spec: list) -> None:
    """Built alike, the agent's families hold the same samples and render the same."""
    mine, reference = build(spec, OURS), build(spec)
    assert [_fields(f) for f in mine] == [_fields(f) for f in reference]
    assert render(mine) == generate_latest(_Fams(reference)) == generate_latest(_Fams(mine))


def _fields(fam) -> tuple:
    return (fam.name, fam.documentation, fam.type, [tuple(s[:4]) for s in fam.samples])


def test_other_types_render_as_generate_latest() -> None:
    info = InfoMetricFamily("board_x", "x\\n", labels=["a"])
    info.add_metric(["b"], {"k": "v\n\""})
    states = StateSetMetricFamily("board_s", "s", labels=["a"])
    states.add_metric(["b"], {"on": True, "off": False})
    fams = [info, states, Metric("board_u", "u", "untyped")]
    assert render(fams) == generate_latest(_Fams(fams))


def test_families_with_created_samples_render_as_generate_latest() -> None:
    reg = CollectorRegistry(auto_describe=False)
    Histogram("board_x_seconds", "x", registry=reg).observe(0.3)  # has _created
    fams = list(reg.collect())
    assert render(fams) == generate_latest(reg)
    assert b"board_x_seconds_bucket{le=\"0.5\"} 1.0" in render(fams)
    assert b"# TYPE board_x_seconds_created gauge" in render(fams)


@given(specs(), st.integers(1, 3))
def test_series_rendered_again_render_as_generate_latest(spec: list, scrapes: int) -> None:
    """Series seen before (their lines cached up to the value) with new values."""
    for _ in range(scrapes):
        fams = build(spec)
        assert render(fams) == generate_latest(_Fams(fams))
        spec = [(kind, name, doc, labels, [(_bumped(kind, args), kwargs) for args, kwargs in calls])
                for kind, name, doc, labels, calls in spec]


def _bumped(kind: int, args: tuple) -> tuple:
    """``add_metric`` arguments with the next scrape's value."""
    if kind == 2:
        return (args[0], [(b, c + 1) for b, c in args[1]], args[2])
    return (args[0], float(args[1]) / 3)


def test_more_series_than_the_line_cache_holds_render_as_generate_latest() -> None:
    fam = GaugeMetricFamily("board_x", "x", labels=["pid", "comm"])
    for pid in range(exposition.MAX_HEADS * 2 + 7):
        fam.add_metric([str(pid), "w\\\n\"%d" % pid], pid / 7)
    for _ in range(2):
        assert render([fam]) == generate_latest(_Fams([fam]))
        assert len(exposition._HEADS) <= exposition.MAX_HEADS


def test_long_label_values_are_cut_alike_every_time_and_not_kept() -> None:
    fam = ours.GaugeMetricFamily("board_info", "info", labels=["model"])
    fam.add_metric(["m" * (exposition.MAX_LABEL_VALUE * 4)], 1)
    first = render([fam])
    assert render([fam]) == first and len(first) < exposition.MAX_LABEL_VALUE + 80
    assert not any(k[0] == "board_info" for k in exposition._HEADS if isinstance(k, tuple))


def test_selfstats_export_what_process_collector_exports() -> None:
    reference = ProcessCollector(registry=None).collect()
    mine = SelfStats().collect()
    assert [(f.name, f.documentation, f.type) for f in mine] == [
        (f.name, f.documentation, f.type) for f in reference]
    by_name = {f.name: f.samples[0].value for f in reference}
    for fam in mine:
        if fam.name in ("process_start_time_seconds", "process_max_fds"):
            assert fam.samples[0].value == by_name[fam.name]
        else:
            assert fam.samples[0].value > 0


def test_selfstats_without_proc_export_nothing(tmp_path) -> None:
    assert SelfStats(str(tmp_path / "gone")).collect() == []


def test_the_agent_does_not_import_prometheus_client() -> None:
    """The agent's modules load neither prometheus_client nor an HTTP client stack."""
    code = ("import sys; sys.argv = ['boardfleet-agent', '--help'];"
            "from boardfleet_agent import cli, app, runner, exposition, registry;"
            "registry.all_collectors();"
            "print(' '.join(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO / "agent")))
    assert r.returncode == 0, r.stderr
    loaded = set(r.stdout.split())
    assert "boardfleet_agent.collectors.cpu" in loaded
    assert not {"prometheus_client", "urllib.request", "wsgiref"} & loaded
