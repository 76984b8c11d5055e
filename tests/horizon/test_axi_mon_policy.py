"""axi_mon statistics and the parsing policy: unknown lines, half ports, cuts at any byte."""

from hypothesis import given, settings
from hypothesis import strategies as st
from support.paths import FIXTURES

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.axi_mon import parse_statistics
from boardfleet_agent.parsers.lines import Skips

STATS = (FIXTURES / "x5/sys/kernel/debug/axi_mon/statistics").read_text()


def test_unknown_line_and_half_port_are_skipped_and_counted() -> None:
    text = STATS.replace("Port[", "Latency histogram: 3 us\nPort[", 1)
    text += "Port[npu]:\n    Read Bandwidth : 5 Bytes/sec\n"
    skips = Skips("horizon_ddr")
    got = parse_statistics(text, skips)
    assert got.ports == parse_statistics(STATS).ports
    assert skips.total == 2


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_cut_keeps_the_ports_of_complete_lines(data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(STATS)))
    full = parse_statistics(STATS).ports
    try:
        got = parse_statistics(STATS[:cut]).ports
    except ParseError:
        return  # cut before the monitor time, the full bandwidth or the first port
    # A prefix of the ports, each with the figures of the uncut file.
    assert got == full[:len(got)]
