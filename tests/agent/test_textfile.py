"""The textfile collector: *.prom files by the Prometheus text format's rules, each
file good or left out alone."""

import contextlib
import math
import os
import re
import string
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from support.agent import run_once
from support.paths import FIXTURES

from boardfleet_agent.collectors.textfile import TextfileCollector
from boardfleet_agent.errors import NoData, ParseError
from boardfleet_agent.exposition import render
from boardfleet_agent.parsers.promtext import parse
from boardfleet_agent.source import LocalSource

GENERIC = str(FIXTURES / "generic")
GOOD = """\
# HELP vendor_npu_temp_celsius NPU die temperature from the vendor's tool.
# TYPE vendor_npu_temp_celsius gauge
vendor_npu_temp_celsius{die="0"} 51.5
vendor_npu_temp_celsius{die="1",note="a \\"quoted\\" \\\\ \\n value",} -Inf
  # a comment
# TYPE vendor_jobs_total counter
vendor_jobs_total 3
# TYPE vendor_latency_seconds histogram
vendor_latency_seconds_bucket{le="0.1"} 1
vendor_latency_seconds_bucket{le="+Inf"} 2
vendor_latency_seconds_sum 0.3
vendor_latency_seconds_count 2
# TYPE vendor_rtt summary
vendor_rtt{quantile="0.5"} NaN
vendor_rtt_sum 1e3
vendor_rtt_count 7
vendor_untyped:ratio .5
"""


Scrape = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def samples(exposition: str) -> Scrape:
    """Every sample of an exposition, read by prometheus_client's parser."""
    out = {}
    for fam in text_string_to_metric_families(exposition):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def collect(directory: Path, collector: TextfileCollector | None = None) -> str:
    c = collector or TextfileCollector({"directory": str(directory)})
    return render(c.collect(LocalSource("/"))).decode()


def test_good_file_is_served_as_prometheus_reads_it(tmp_path) -> None:
    (tmp_path / "vendor.prom").write_text(GOOD)
    got = samples(collect(tmp_path))
    want = samples(GOOD)
    assert {k: v for k, v in got.items() if not k[0].startswith("board_")}.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == value or (math.isnan(got[key]) and math.isnan(value))
    mtime = os.stat(tmp_path / "vendor.prom").st_mtime
    assert got[("board_textfile_mtime_seconds", (("file", "vendor.prom"),))] == pytest.approx(
        mtime)
    assert got[("board_textfile_scrape_error", ())] == 0


@pytest.mark.parametrize("text, fragment", [
    ("x 1 1700000000000\n", "line 1: x: timestamps"),
    ("x\n", "x has no value"),
    ("x abc\n", "'abc' is not a number"),
    ("x 0x1p3\n", "'0x1p3' is not a number"),
    ("x 1\nx 2\n", "line 2: series x appears twice"),
    ("# TYPE x gauge\n# TYPE x gauge\n", "second TYPE line"),
    ("# HELP x a\n# HELP x b\n", "second HELP line"),
    ("x 1\n# TYPE x gauge\n", "TYPE line for x after its samples"),
    ("# TYPE x counters\n", "'counters' is not one of"),
    ("# HELP 1x a\n", "not a metric name"),
    ("x{__name__=\"y\"} 1\n", "reserved"),
    ("x{a=\"1\",a=\"2\"} 1\n", "label a given twice"),
    ("x{a=1} 1\n", "value must be quoted"),
    ("x{a=\"\\t\"} 1\n", "invalid escape \\t"),
    ("x{a=\"open} 1\n", "not closed"),
    ("x{a=\"1\" b=\"2\"} 1\n", "expected ',' or '}'"),
    ("x-y 1\n", "bad character '-'"),
    ("# TYPE h histogram\nh_bucket 1\n", "le of h_bucket"),
    ("# TYPE h histogram\nh 1\n", "samples are h_bucket"),
    ("# TYPE s summary\ns 1\n", "quantile of s"),
    ("x 1", "no newline"),
    ("x 1\r\n", "not a number"),
])
def test_bad_files_are_refused_naming_the_line(text: str, fragment: str) -> None:
    with pytest.raises(ParseError) as e:
        parse(text)
    assert fragment in str(e.value)


def test_a_bad_file_is_left_out_alone_and_counted_once_per_version(tmp_path, caplog) -> None:
    (tmp_path / "good.prom").write_text("vendor_ok 1\n")
    bad = tmp_path / "bad.prom"
    bad.write_text("vendor_bad{ 1\n")
    (tmp_path / "ignored.txt").write_text("not read\n")
    c = TextfileCollector({"directory": str(tmp_path)})
    for _ in range(3):
        got = samples(collect(tmp_path, c))
    assert got[("vendor_ok", ())] == 1
    assert got[("board_textfile_scrape_error", ())] == 1
    assert got[("board_textfile_errors_total", (("file", "bad.prom"),))] == 1
    assert ("board_textfile_mtime_seconds", (("file", "bad.prom"),)) not in got
    assert len([r for r in caplog.records if "bad.prom" in r.getMessage()]) == 1
    bad.write_text("vendor_bad{} x\n")  # another broken version: counted again
    os.utime(bad, ns=(0, 10**9))
    got = samples(collect(tmp_path, c))
    assert got[("board_textfile_errors_total", (("file", "bad.prom"),))] == 2
    bad.write_text("vendor_bad 2\n")
    got = samples(collect(tmp_path, c))
    assert got[("vendor_bad", ())] == 2
    assert got[("board_textfile_scrape_error", ())] == 0


def test_files_that_clash_or_take_the_agents_names_are_left_out(tmp_path) -> None:
    (tmp_path / "a.prom").write_text("# TYPE shared gauge\nshared{f=\"a\"} 1\nsame 1\n")
    (tmp_path / "b.prom").write_text("# TYPE shared gauge\nshared{f=\"b\"} 2\n")
    (tmp_path / "c.prom").write_text("# TYPE shared counter\nshared_total 1\n"
                                     "# TYPE shared untyped\n")
    (tmp_path / "d.prom").write_text("same 2\n")
    (tmp_path / "e.prom").write_text("board_cpu_seconds_total 1\n")
    (tmp_path / "f.prom").write_text("process_open_fds 1\n")
    fifo = tmp_path / "g.prom"
    os.mkfifo(fifo)  # a writer that never comes must not block the read
    got = samples(collect(tmp_path))
    assert got[("shared", (("f", "a"),))] == 1 and got[("shared", (("f", "b"),))] == 2
    assert got[("same", ())] == 1
    errors = {dict(k[1])["file"] for k in got if k[0] == "board_textfile_errors_total"}
    assert errors == {"c.prom", "d.prom", "e.prom", "f.prom", "g.prom"}


def test_no_directory_exports_nothing_and_a_missing_one_fails(tmp_path) -> None:
    with pytest.raises(NoData):
        list(TextfileCollector({}).collect(LocalSource("/")))
    c = TextfileCollector({"directory": str(tmp_path / "absent")})
    families: List[Metric] = []
    with pytest.raises(OSError, match="textfile directory"):
        for fam in c.collect(LocalSource("/")):
            families.append(fam)
    assert [(f.name, f.samples[0].value) for f in families] == [
        ("board_textfile_scrape_error", 1.0)]


def test_the_agent_serves_textfiles_only_when_a_directory_is_configured(tmp_path) -> None:
    (tmp_path / "vendor.prom").write_text(GOOD)
    assert "textfile" not in run_once(GENERIC)
    text = run_once(GENERIC, "--collector.textfile.directory", str(tmp_path))
    assert 'vendor_npu_temp_celsius{die="0"} 51.5' in text
    assert 'board_collector_success{collector="textfile"} 1.0' in text
    conf = tmp_path / "agent.toml"
    conf.write_text('[collectors.textfile]\ndirectory = "%s"\n' % tmp_path)
    assert "vendor_jobs_total 3.0" in run_once(GENERIC, "--config", str(conf))
    conf.write_text('[collectors.textfile]\ndirectory = "%s"\nenabled = false\n' % tmp_path)
    assert "vendor_jobs_total" not in run_once(GENERIC, "--config", str(conf))


# Valid expositions, written by prometheus_client (the reference writer).
names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,12}", fullmatch=True).filter(
    lambda n: not n.startswith(("board_", "process_", "__")) and not re.search(
        r"_(total|bucket|sum|count|created|info)$", n))
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: not n.startswith("__") and n not in ("le", "quantile"))
label_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
floats = st.floats(allow_nan=False)


@st.composite
def families(draw) -> List[Metric]:
    out = []
    for name in draw(st.lists(names, max_size=4, unique=True)):
        kind = draw(st.sampled_from(["gauge", "counter", "unknown"]))
        m = Metric(name, draw(label_values), kind)
        labels = draw(st.lists(label_names, max_size=3, unique=True))
        for values in draw(st.lists(st.tuples(*[label_values] * len(labels)), max_size=4,
                                    unique=True)):
            m.add_sample(name + "_total" if kind == "counter" else name,
                         dict(zip(labels, values, strict=True)), draw(floats))
        out.append(m)
    return out


class _Registry(CollectorRegistry):
    def __init__(self, fams: List[Metric]) -> None:
        super().__init__(auto_describe=False)
        self.fams = fams

    def collect(self):  # type: ignore[no-untyped-def]
        return iter(self.fams)


@given(families())
@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_what_prometheus_client_writes_is_read_back_the_same(tmp_path, fams) -> None:
    text = generate_latest(_Registry(fams)).decode()
    (tmp_path / "gen.prom").write_text(text)
    got = samples(collect(tmp_path))
    assert got[("board_textfile_scrape_error", ())] == 0
    assert {k: v for k, v in got.items() if not k[0].startswith("board_")} == samples(text)


CHUNKS = st.sampled_from([
    "\n", " ", "\t", "#", "# HELP ", "# TYPE ", "gauge", "counter", "histogram", "summary",
    "x", "x_bucket", "x_sum", "x_count", "_total", "{", "}", "=", '"', "\\", ",", "le",
    "quantile", "1", "-", ".", "e", "+Inf", "NaN", "0x1", "\r", "\x00", "é", "__name__",
])


@given(st.one_of(st.binary(max_size=200),
                 st.lists(CHUNKS, max_size=50).map(lambda c: "".join(c).encode())))
@settings(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_file_content_is_served_or_left_out_alone(tmp_path, content: bytes) -> None:
    (tmp_path / "a_good.prom").write_text("vendor_ok 1\n")
    (tmp_path / "fuzz.prom").write_bytes(content)
    text = collect(tmp_path)
    got = samples(text)  # the exposition stays valid whatever the file held
    assert got[("vendor_ok", ())] == 1
    refused = ("board_textfile_errors_total", (("file", "fuzz.prom"),)) in got
    assert got[("board_textfile_scrape_error", ())] == (1 if refused else 0)
    if not refused:
        assert ("board_textfile_mtime_seconds", (("file", "fuzz.prom"),)) in got
        for key, value in samples(content.decode()).items():
            assert got[key] == value or (math.isnan(value) and math.isnan(got[key]))


@given(st.text(string.printable + "é\x00", max_size=200))
@settings(max_examples=500, deadline=None)
def test_parse_of_arbitrary_text_raises_only_parse_error(text: str) -> None:
    with contextlib.suppress(ParseError):
        parse(text)
