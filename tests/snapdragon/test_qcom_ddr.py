"""Snapdragon DDR: GKI bus_dcvs (kHz) and pre-GKI devfreq bandwidth votes."""

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.agent import run_once
from support.paths import FIXTURES, REPO
from support.promtool import promtool

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
    assert got["board_ddr_frequency_ratio"] == {
        (("controller", "DDR"), ("source", "bus_dcvs_freq")): pytest.approx(1017000 / 3196000)}
    fam = next(f for f in collector.collect(LocalSource(str(QCS6490)))
               if f.name == "board_ddr_frequency_ratio")
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
    assert got["board_ddr_frequency_ratio"] == {
        (("controller", "DDR"), ("source", "devfreq_freq")): pytest.approx(2929 / 12191)}


def test_pre_gki_cpubw(tmp_path: Path) -> None:
    _devfreq(tmp_path, "soc:qcom,cpubw", "762\n", "381 762 1144 1524\n")
    got = collect(QcomDdrCollector({}, "snapdragon"), LocalSource(str(tmp_path)))
    assert list(got["board_ddr_frequency_ratio"].values()) == [0.5]


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


def test_fixture_exports_no_frequency_as_utilization() -> None:
    """Issue 14: the DDR alert reads board_ddr_utilization_ratio; Snapdragon has none."""
    text = run_once(str(FIXTURES / "qcs6490"))
    assert "board_ddr_utilization_ratio" not in text
    assert 'board_ddr_frequency_ratio{controller="DDR",source="bus_dcvs_freq"}' in text
    assert 'board_ddr_frequency_hertz{controller="DDR"}' in text


def test_ddr_alert_stays_quiet_on_a_snapdragon_at_full_ddr_clock(tmp_path: Path) -> None:
    """The real rule files, fed every DDR series the qcs6490 fixture exports at 100 %."""
    text = run_once(str(FIXTURES / "qcs6490"))
    ddr = [line.rsplit(" ", 1)[0] for line in text.splitlines()
           if line.startswith("board_ddr_")]
    assert ddr
    scrape = 'job="boardfleet-agent",board="q1",platform="snapdragon",rack="r",owner="o",'
    series = "\n".join('      - series: \'%s\'\n        values: "1x60"'
                       % line.replace("{", "{" + scrape, 1) for line in ddr)
    rules = REPO / "prometheus/rules"
    (tmp_path / "t.yml").write_text(
        "rule_files:\n  - %s\n  - %s\nevaluation_interval: 15s\ntests:\n"
        "  - interval: 15s\n    input_series:\n%s\n    alert_rule_test:\n"
        "      - eval_time: 10m\n        alertname: BoardDDRBandwidthHigh\n"
        "        exp_alerts: []\n" % (rules / "boardfleet-recording.yml",
                                     rules / "boardfleet-alerts.yml", series))
    r = subprocess.run([promtool(), "test", "rules", str(tmp_path / "t.yml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
