"""The StatsD datagram parser: accepted forms, every reject reason, arbitrary junk."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from inference_io import parse_datagram

from boardfleet_agent.inference.report import statsd_line
from boardfleet_agent.inference.statsd import (
    MAX_PACKET_BYTES,
    REASONS,
    Sample,
    parse_line,
)


def test_timing_with_rate_and_tags_in_either_order():
    want = Sample("det", "ms", 12.5, 0.25, {"model": "yolov8", "backend": "bpu"})
    assert parse_line("det:12.5|ms|@0.25|#model:yolov8,backend:bpu") == want
    assert parse_line("det:12.5|ms|#model:yolov8,backend:bpu|@0.25") == want


def test_plain_timing_and_counter():
    assert parse_line("resnet50:3|ms") == Sample("resnet50", "ms", 3.0, 1.0, {})
    assert parse_line("model_load_begin:1|c|#model:m,stage:first,pid:7") == Sample(
        "model_load_begin", "c", 1.0, 1.0, {"model": "m", "stage": "first", "pid": "7"})


def test_datagram_with_several_lines_crlf_and_blank_lines():
    samples, rejects = parse_datagram(b"a:1|ms\r\n\nb:2|ms\nbroken\n")
    assert [(s.name, s.value) for s in samples] == [("a", 1.0), ("b", 2.0)]
    assert rejects == ["malformed"]


def test_reject_reasons():
    cases = {
        "x:1|g": "unknown_type", "x:1|h": "unknown_type", "x:1": "malformed",
        ":1|ms": "malformed", "x:abc|ms": "malformed", "x:1|ms|@0": "malformed",
        "x:1|ms|@1.5": "malformed", "x:1|ms|@0.5|@0.5": "malformed", "x:1|ms|zz": "malformed",
        "x:1|ms|#:v": "malformed", "x:nan|ms": "not_finite", "x:inf|ms": "not_finite",
        "x:-1|ms": "negative", "x:1e300|ms": "too_large", "x:3600001|ms": "too_large",
        "x:\u0661\u0662|ms": "malformed", "x:1_0|ms": "malformed", "m\u00f6del:1|ms": "malformed",
    }
    for line, reason in cases.items():
        assert parse_line(line) == reason, line
    assert set(cases.values()) <= set(REASONS)


def test_oversized_and_undecodable_packets():
    assert parse_datagram(b"x:1|ms\n" * 2000) == ([], ["oversized_packet"])
    assert parse_datagram(b"x:1|ms\xff\xfe") == ([], ["bad_encoding"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=MAX_PACKET_BYTES + 50))
def test_arbitrary_bytes_never_raise(data):
    samples, rejects = parse_datagram(data)
    assert set(rejects) <= set(REASONS)
    for s in samples:
        assert math.isfinite(s.value) and s.value >= 0 and 0 < s.rate <= 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_lines_never_raise(text):
    got = parse_line(text)
    assert got in REASONS or isinstance(got, Sample)


names = st.from_regex(r"[A-Za-z0-9_.\-]{1,40}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(names, st.floats(min_value=0, max_value=3.6e6), st.dictionaries(
    st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), names, max_size=4))
def test_format_then_parse_round_trips(name, ms, tags):
    assert parse_line(statsd_line(name, ms, "ms", tags)) == Sample(name, "ms", ms, 1.0, tags)
