"""The thresholds schema (boardfleet.thresholds): the shipped file loads, every misspelt
key and every bad value is refused naming the file and the dotted key, and no input
raises anything but ThresholdsError."""

import copy
import json
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.paths import REPO

from boardfleet.cli import main
from boardfleet.dashboards import common
from boardfleet.rules import load_thresholds, render, shortened
from boardfleet.soak import criteria
from boardfleet.thresholds import Soak, ThresholdsError, load, parse, seconds

SHIPPED = REPO / "prometheus" / "thresholds.yml"
DOC = yaml.safe_load(SHIPPED.read_text())
Path_ = Tuple[Any, ...]


def _keys(node: Any, at: Path_ = ()) -> Iterator[Path_]:
    """Every mapping key of the document, as its path."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*at, k)
            yield from _keys(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _keys(v, (*at, i))


def _dotted(path: Path_) -> str:
    out = ""
    for p in path:
        out += "[%d]" % p if isinstance(p, int) else ("." if out else "") + p
    return out


_DELETE = object()


def _edit(path: Path_, value: Any = _DELETE, rename: str | None = None) -> dict:
    doc = copy.deepcopy(DOC)
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    if rename is not None:
        parent[rename] = parent.pop(path[-1])
    elif value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def _error(doc: Any) -> str:
    with pytest.raises(ThresholdsError) as e:
        parse(doc, "lab/thresholds.yml")
    return str(e.value)


def test_shipped_file_loads_and_fills_soak_defaults() -> None:
    t = load(SHIPPED)
    assert t.alerts.BoardDDRBandwidthHigh.ratio == 0.40
    data = load_thresholds(SHIPPED)
    assert {k: v for k, v in data.items() if k != "soak"} == \
        {k: v for k, v in DOC.items() if k != "soak"}
    assert data["soak"] == DOC["soak"]
    # Numbers stay as written (85, not 85.0), so generated rule text does not move.
    assert type(data["alerts"]["BoardTemperatureHigh"]["celsius"]) is int
    assert criteria.load(SHIPPED).gap_min_seconds == 600
    assert criteria.load(SHIPPED).ddr_ratio == 0.40


def test_soak_table_is_optional_with_the_declared_defaults() -> None:
    doc = _edit(("soak",))
    assert parse(doc).as_dict()["soak"] == Soak().model_dump()
    assert parse({**doc, "soak": None}).soak == Soak()
    assert criteria.from_thresholds(parse(doc)) == criteria.from_soak(Soak(), 0.40)


@pytest.mark.parametrize("path", list(_keys(DOC)), ids=_dotted)
def test_every_misspelt_key_is_refused_by_name(path: Path_) -> None:
    wrong = str(path[-1]) + "x"
    msg = _error(_edit(path, rename=wrong))
    where = _dotted((*path[:-1], wrong))
    assert msg.startswith("lab/thresholds.yml: ")
    assert "%s: unknown key (known here: " % where in msg
    assert str(path[-1]) in msg.split(where, 1)[1]  # the right spelling is offered


@pytest.mark.parametrize("path", [p for p in _keys(DOC) if p[0] != "soak"], ids=_dotted)
def test_every_required_key_left_out_is_named(path: Path_) -> None:
    if path[-1] == "keep_firing_for" and len(path) == 3:
        parse(_edit(path))  # an alert's own hold is optional: the global one applies
        return
    assert "%s: missing" % _dotted(path) in _error(_edit(path))


A = ("alerts",)
BAD: List[Tuple[Path_, Any, str]] = [
    ((*A, "BoardDown", "for"), "2x", "'2x' is not a Prometheus duration"),
    ((*A, "BoardDown", "for"), "1.5h", "is not a Prometheus duration"),
    ((*A, "BoardDown", "for"), "1m1h", "is not a Prometheus duration"),
    ((*A, "BoardDown", "for"), 5, "must be a duration such as 5m, not a number"),
    ((*A, "BoardDown", "vanished_window"), "0s", "longer than zero"),
    ((*A, "BoardDown", "severity"), "page", "must be 'critical', 'warning' or 'info'"),
    ((*A, "BoardDDRBandwidthHigh", "ratio"), 1.5, "a ratio between 0 and 1, not 1.5"),
    ((*A, "BoardDDRBandwidthHigh", "share"), -0.1, "a ratio between 0 and 1"),
    ((*A, "BoardDDRBandwidthHigh", "ratio"), "0.4", "must be a number, not text"),
    ((*A, "BoardDDRBandwidthHigh", "ratio"), True, "must be a number, not true/false"),
    ((*A, "BoardDDRBandwidthHigh", "ratio"), float("nan"), "a ratio between 0 and 1"),
    ((*A, "BoardMMZExhausted", "largest_free_block_bytes"), 0, "greater than 0"),
    ((*A, "BoardAcceleratorMemoryLeak", "growth_bytes_per_hour"), float("inf"),
     "greater than 0"),
    ((*A, "BoardMMZFillingUp", "windows", 0, "count"), 2.5, "a whole number, not 2.5"),
    ((*A, "BoardMMZFillingUp", "windows", 0, "drops"), 6, "drops at most count - 1"),
    ((*A, "BoardMMZFillingUp", "windows"), [], "must not be empty"),
    ((*A, "BoardMMZFillingUp", "windows", 1, "name"), "fast", "two windows with the same name"),
    ((*A, "BoardMMZFillingUp", "windows", 1, "window"), "10m", "the same window"),
    ((*A, "BoardInferenceLatencyHigh", "regression_factor"), 1, "greater than 1"),
    ((*A, "BoardRebooted", "tolerance_seconds"), -1, "at least 0"),
    ((*A, "BoardDown"), None, "must be a mapping, not empty"),
    (A, ["BoardDown"], "must be a mapping, not a list"),
    (("board_labels",), ["board", "job"], "include board, instance, job"),
    (("board_labels",), ["board", "instance", "job", "bad-name"], "a label name"),
    (("agent_job",), "a|b", "a name of letters"),
    (("runbook_url",), "runbook", "an http(s) address"),
    (("keep_firing_for",), "forever", "not a Prometheus duration"),
    (("soak", "gap_min"), "10", "not a Prometheus duration"),
    (("soak", "scrape_completeness_min"), 95, "a ratio between 0 and 1, not 95"),
    (("soak", "reboots_max"), 0.5, "a whole number"),
    (("soak", "fail_on_alert_severities"), "critical", "must be a list, not text"),
    (("soak", "fail_on_alert_severities"), ["urgent"], "must be 'critical'"),
]


@pytest.mark.parametrize(("path", "value", "cause"), BAD, ids=[_dotted(b[0]) for b in BAD])
def test_bad_values_are_refused_with_key_and_cause(path: Path_, value: Any, cause: str) -> None:
    msg = _error(_edit(path, value))
    # Checks across keys name the table that holds them.
    key = _dotted(path[:-2] if "the same" in cause else
                  path[:-1] if "drops at most" in cause else path)
    assert msg.startswith("lab/thresholds.yml: %s" % key), msg  # [i] for list items
    assert cause in msg


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    for text, cause in [("a: [\n", "is not valid YAML"), ("- 1\n", "expected a mapping"),
                        ("", "expected a mapping"), ("d: 2024-02-30\n", "is not valid YAML"),
                        ("[" * 5000 + "]" * 5000, "is not valid YAML")]:
        (tmp_path / "t.yml").write_text(text)
        with pytest.raises(ThresholdsError, match=cause):
            load(tmp_path / "t.yml")
    (tmp_path / "b.yml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ThresholdsError, match=r"b\.yml is not UTF-8"):
        load(tmp_path / "b.yml")
    with pytest.raises(ThresholdsError, match=r"cannot read .*nope\.yml: No such file"):
        load(tmp_path / "nope.yml")


def test_durations_follow_prometheus() -> None:
    assert [seconds(d) for d in ("0", "0s", "30s", "5m", "1h30m", "1d", "1w", "500ms")] == \
        [0, 0, 30, 300, 5400, 86400, 604800, 0.5]


def test_compound_durations_render() -> None:
    doc = _edit((*A, "BoardMMZFillingUp", "windows", 1, "window"), "1h30m")
    text = "".join(render(parse(doc).as_dict()).values())
    assert "min_over_time(board_zone:board_mmz_free_bytes:ratio[1h30m])" in text
    assert "offset 37800s" in text  # 7 windows of 1h30m back
    assert "ratio[90s]" in "".join(render(shortened(parse(doc).as_dict(), "1s", 60)).values())


def test_every_consumer_refuses_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture
                                           ) -> None:
    bad = tmp_path / "thresholds.yml"
    bad.write_text(yaml.safe_dump(_edit((*A, "BoardDown", "for"), rename="fro")))
    unknown = r"thresholds\.yml: .*alerts\.BoardDown\.fro: unknown key"
    for read in (load_thresholds, common.load_thresholds, criteria.load):
        with pytest.raises(ThresholdsError, match=unknown):
            read(bad)
    assert main(["rules", "generate", "-t", str(bad), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("boardfleet: cannot generate rules: %s: " % bad)
    assert "alerts.BoardDown.fro: unknown key" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


YAML_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                         st.text(max_size=12))
YAML_DATA = st.recursive(YAML_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=64),
    YAML_DATA.map(lambda d: yaml.safe_dump(d).encode()),
    st.tuples(st.sampled_from(list(_keys(DOC))), YAML_DATA).map(
        lambda pv: yaml.safe_dump(_edit(*pv)).encode()),
))
def test_arbitrary_yaml_raises_only_thresholds_error(tmp_path_factory: pytest.TempPathFactory,
                                                     raw: bytes) -> None:
    path = tmp_path_factory.mktemp("t") / "thresholds.yml"
    path.write_bytes(raw)
    try:
        t = load(path)
    except ThresholdsError as e:
        assert str(e).startswith(("%s: " % path, "%s is not" % path, "cannot read")), e
        return
    render(t.as_dict())  # what loads also renders


def test_unjudged_report_carries_soak_defaults_and_renders() -> None:
    """A report made without a readable thresholds file records the soak defaults and
    no DDR bound, and still renders in every format."""
    from boardfleet.soak import render as soak_render
    from boardfleet.soak.report import Window, unjudged

    rep = unjudged(Window("n1", 0, 3600, ["b1"]), "http://127.0.0.1:9", "no verdict: x")
    doc = json.loads(soak_render.to_json(rep))
    assert doc["criteria"]["ddr_ratio"] is None
    assert doc["criteria"]["gap_min_seconds"] == seconds(Soak().gap_min)
    for fmt in (soak_render.to_html, soak_render.to_markdown, soak_render.to_junit):
        assert "b1" in fmt(rep)
