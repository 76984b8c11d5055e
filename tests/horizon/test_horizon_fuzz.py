"""Every Horizon/ION parser on random text and on every real sample cut short.

They return records or raise ParseError, nothing else.
"""

from typing import Callable, List

import pytest
from horizon_helpers import gecko_msm_heap, sample, without_prompt
from hypothesis import given, settings
from hypothesis import strategies as st
from support.paths import FIXTURES

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.axi_mon import parse_statistics
from boardfleet_agent.parsers.bpu import parse_ratio
from boardfleet_agent.parsers.hrut_ddr import parse_last_block
from boardfleet_agent.parsers.ion import parse_all_heap_info, parse_heap_file

HEAPS = FIXTURES / "x5/sys/kernel/debug/ion/heaps"
ION_TEXTS = [
    without_prompt(sample("horizon", "generic_android_ion_heap_compound_page_juno.txt")),
    without_prompt(sample("qualcomm", "ion_heap_system_android_user_pid_variant.txt")),
    gecko_msm_heap(),
    (HEAPS / "carveout").read_text(),
    (FIXTURES / "x3/sys/kernel/debug/ion/heaps/ion_cma").read_text(),
]
PARSERS: List[Callable[[str], object]] = [
    lambda t: parse_heap_file(t, "h"), parse_all_heap_info, parse_statistics,
    parse_last_block, lambda t: parse_ratio(t, "ratio"),
]
CASES = [(PARSERS[0], text) for text in ION_TEXTS] + [
    (parse_all_heap_info, (HEAPS / "all_heap_info").read_text()),
    (parse_statistics, (FIXTURES / "x5/sys/kernel/debug/axi_mon/statistics").read_text()),
    (parse_last_block, sample("horizon", "x5_hrut_ddr_all.txt")),
    (parse_last_block, sample("horizon", "x5_hrut_ddr_help.txt")),
]
# Words the parsers look for, so random text reaches their deeper branches.
WORDS = st.sampled_from([
    "total", "total orphaned", "deferred free", "heap total size", "the heap id is",
    "allocations (info is from last known client):", "orphaned", "client", "pid", "size",
    "heap name", "user_pid", "0x1f", "-" * 60, "Port[cpu]:", "Read", "Write", "MB/S",
    "P0:CPU", "Time 12.5s", "Read  Bandwidth : 12 Bytes/sec", "DDR Full bandwidth:9 Bytes/sec",
    "Actual monitor time:1000 millisecs", "not inited!", ":", "\n", " ", "12", "4096", "-1",
])
TEXT = st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=40).map(" ".join)


def _ok_or_parse_error(parse: Callable[[str], object], text: str) -> None:
    try:
        result = parse(text)
    except ParseError:
        return
    assert result is None or isinstance(result, (tuple, list, float))


@pytest.mark.parametrize("parse", PARSERS)
@settings(max_examples=150, deadline=None)
@given(text=TEXT)
def test_random_text(parse: Callable[[str], object], text: str) -> None:
    _ok_or_parse_error(parse, text)


@pytest.mark.parametrize("parse,text", CASES)
def test_samples_cut_at_every_line(parse: Callable[[str], object], text: str) -> None:
    if "HELP" not in text:
        assert parse(text)  # the whole sample is valid
    lines = text.splitlines(keepends=True)
    for n in range(len(lines) + 1):
        _ok_or_parse_error(parse, "".join(lines[:n]))


@pytest.mark.parametrize("parse,text", CASES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_samples_cut_at_random_bytes(parse: Callable[[str], object], text: str,
                                     data: st.DataObject) -> None:
    raw = text.encode()
    cut = data.draw(st.integers(0, len(raw)))
    _ok_or_parse_error(parse, raw[:cut].decode("utf-8", "replace"))
