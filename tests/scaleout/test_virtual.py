"""The virtual fleet: many boards from one process, each the real agent's page."""

import urllib.error
import urllib.request

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.agent import run_once
from support.paths import FIXTURES

from boardfleet.simulator.virtual import VirtualFleet, parse, templates

PLATFORMS = ("hi3516ev200", "qcs6490")


def _samples(text: str) -> dict:
    return {line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
            for line in text.splitlines() if line and not line.startswith("#")}


@pytest.fixture(scope="module")
def tmpl() -> dict:
    return templates(FIXTURES, PLATFORMS)


def test_each_board_serves_its_platforms_agent_page(tmpl: dict) -> None:
    with VirtualFleet(10, tmpl) as fleet:
        assert fleet.series == sum(tmpl[n].series for n in
                                   (name.split("-", 2)[2] for name in fleet.boards))
        groups = fleet.file_sd()
        assert len(groups) == 10 and len({g["labels"]["board"] for g in groups}) == 10
        for g in groups[:2]:
            url = "http://%s%s" % (g["targets"][0], g["labels"]["__metrics_path__"])
            with urllib.request.urlopen(url, timeout=10) as r:
                got = _samples(r.read().decode())
            sysroot = g["labels"]["board"].split("-", 2)[2]
            want = _samples(run_once(str(FIXTURES / sysroot)))
            assert set(got) == set(want)  # same series as the real agent
            assert g["labels"]["platform"] == {"hi3516ev200": "hisi",
                                               "qcs6490": "snapdragon"}[sysroot]
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen("http://%s/boards/nope/metrics" % fleet.address, timeout=10)
        assert e.value.code == 404


def test_counters_advance_gauges_stay() -> None:
    t = parse("hisi", "# TYPE a_total counter\na_total 5\n# TYPE b gauge\nb{x=\"1\"} 2\n"
                      "# TYPE c counter\nc_total 1\nc_created 1.7e9\n")
    later = _samples(t.render(10).decode())
    assert later == {"a_total": 15.0, 'b{x="1"}': 2.0, "c_total": 11.0, "c_created": 1.7e9}


@given(st.text())
def test_any_text_parses_to_lines_it_can_render(text: str) -> None:
    t = parse("generic", text)
    assert t.series <= len(text.splitlines())
    t.render(3)  # never raises
