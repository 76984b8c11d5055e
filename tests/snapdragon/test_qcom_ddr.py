"""Snapdragon DDR: GKI bus_dcvs (kHz) and pre-GKI devfreq bandwidth votes."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boardfleet_agent.collectors.qcom_ddr import QcomDdrCollector
from boardfleet_agent.errors import NoData, ParseError
from boardfleet_agent.parsers.devfreq import (
    frequency_ratio,
    parse_available_frequencies,
    parse_frequency,
)
from boardfleet_agent.source import LocalSource
from snapdragon.helpers import QCS6490, collect, parsed_or_rejected, sample

MBPS_ZONES = "1720 2086 2929 3879 6515 7980 12191"


def test_bus_dcvs_on_fixture() -> None:
    collector = QcomDdrCollector({}, "snapdragon")
    got = collect(collector, LocalSource(str(QCS6490)))
    assert got["board_ddr_frequency_hertz"] == {(("controller", "DDR"),): 1017000000.0}
    assert got["board_ddr_utilization_ratio"] == {
        (("controller", "DDR"), ("source", "bus_dcvs_freq")): pytest.approx(1017000 / 3196000)}
    fam = next(f for f in collector.collect(LocalSource(str(QCS6490)))
               if f.name == "board_ddr_utilization_ratio")
    assert "not measured traffic" in fam.documentation


def _devfreq(root: Path, node: str, cur: str, available: str) -> None:
    d = root / "sys/class/devfreq" / node
    d.mkdir(parents=True)
    (d / "cur_freq").write_text(cur)
    (d / "available_frequencies").write_text(available)


def test_pre_gki_llcc_ddr_bw_vote(tmp_path: Path) -> None:
    assert "soc:qcom,cpu-llcc-ddr-bw" in sample("devfreq_list_redfin_sm7250.txt")
    assert MBPS_ZONES in sample("bus_dcvs_paths_from_code.txt")
    _devfreq(tmp_path, "soc:qcom,cpu-llcc-ddr-bw", "2929\n", MBPS_ZONES + " \n")
    _devfreq(tmp_path, "soc:qcom,cpubw", "100\n", "100 200\n")  # second choice, unused
    got = collect(QcomDdrCollector({}, "snapdragon"), LocalSource(str(tmp_path)))
    # A MB/s vote is not a frequency: only the ratio is exported.
    assert "board_ddr_frequency_hertz" not in got
    assert got["board_ddr_utilization_ratio"] == {
        (("controller", "DDR"), ("source", "devfreq_freq")): pytest.approx(2929 / 12191)}


def test_pre_gki_cpubw(tmp_path: Path) -> None:
    _devfreq(tmp_path, "soc:qcom,cpubw", "762\n", "381 762 1144 1524\n")
    got = collect(QcomDdrCollector({}, "snapdragon"), LocalSource(str(tmp_path)))
    assert list(got["board_ddr_utilization_ratio"].values()) == [0.5]


def test_bus_dcvs_without_table_exports_frequency_only(tmp_path: Path) -> None:
    d = tmp_path / "sys/devices/system/cpu/bus_dcvs/DDR"
    d.mkdir(parents=True)
    (d / "cur_freq").write_text("547000\n")
    got = collect(QcomDdrCollector({}, "snapdragon"), LocalSource(str(tmp_path)))
    assert got == {"board_ddr_frequency_hertz": {(("controller", "DDR"),): 547000000.0}}


def test_nothing_is_no_data(tmp_path: Path) -> None:
    with pytest.raises(NoData):
        list(QcomDdrCollector({}, "snapdragon").collect(LocalSource(str(tmp_path))))


def test_ratio_is_capped_for_boost_votes() -> None:
    assert frequency_ratio(4000, [1000, 3000]) == 1.0


@pytest.mark.parametrize("bad", ["", "0 0", "-5 10", "x"])
def test_bad_tables(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_available_frequencies(bad, "available_frequencies")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_devfreq_parsers_random_text(text: str) -> None:
    freq = parsed_or_rejected(lambda t: parse_frequency(t, "f"), text)
    assert freq is None or freq >= 0
    table = parsed_or_rejected(lambda t: parse_available_frequencies(t, "f"), text)
    assert table is None or (table and max(table) > 0)
    if freq is not None and table is not None:
        assert 0.0 <= frequency_ratio(freq, table) <= 1.0
