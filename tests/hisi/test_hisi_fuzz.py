"""Every HiSilicon parser on random text and on every real sample cut short:
it returns records or raises ParseError, nothing else."""

import contextlib
from typing import Callable, Dict

import pytest
from hisi_samples import HISI, sample_names
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.hiddrs import ddr_utilization
from boardfleet_agent.parsers.hisi_accel import parse_accel
from boardfleet_agent.parsers.hisi_vb import parse_vb
from boardfleet_agent.parsers.mmz import (
    largest_free_bytes,
    parse_media_mem,
    summary_consistent,
    zone_labels,
)


def _mmz(text: str) -> None:
    mm = parse_media_mem(text)
    summary_consistent(mm)
    assert len(set(zone_labels(mm.zones))) == len(mm.zones)
    for z in mm.zones:
        assert 0 <= largest_free_bytes(z) <= z.end - z.start + 1


PARSERS: Dict[str, Callable[[str], object]] = {
    "media-mem": _mmz,
    "umap-vb": parse_vb,
    "umap-ive": lambda t: parse_accel(t, "ive"),
    "umap-svp_nnn": lambda t: parse_accel(t, "svp_nnn"),
    "hiddrs": lambda t: ddr_utilization(t, 3),
}
CASES = [(prefix, name) for prefix in PARSERS for name in sample_names(prefix)]

# Text made of the formats' own pieces, so random input reaches deep into the parsers.
PIECES = st.sampled_from([
    "+---ZONE: PHYS(0x", "44000000", ", 0x", "47FFFFFF", "), GFP=0", ", nBYTES=", "65536KB",
    ",    NAME=\"", "anonymous\"", "   |-MMB: phys(0x", "   *-MMB: phys(0x", "), kvirt=0x0",
    ", flags=0x1", " pid[1,2,0,0,0], ", ", length=", "4KB", "name=\"x\"", "\n", "\r\n",
    "---MMZ_USE_INFO:", " total size=", "(0MB)", ",used=", ",remain=", ",zone_number=1",
    ",block_number=1", "PoolId", " BlkCnt ", " Free ", " MinFree ", " IsComm ", " BlkSz ",
    "-----", "device_id", " hw_utilization", " total_irq_cnt", " TotalIntCnt", " Utili",
    " CoreId", "  0", " 12%", " -1", " 0x1f", "ddrc0[", "ddrc[1][", "19.23%]", " ", "\t",
])
MIXED = st.one_of(st.text(max_size=300), st.lists(PIECES, max_size=60).map("".join))


def _check(parse: Callable[[str], object], text: str) -> None:
    with contextlib.suppress(ParseError):  # any other exception fails the test
        parse(text)


@pytest.mark.parametrize("prefix", sorted(PARSERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=MIXED)
def test_random_text(prefix: str, text: str) -> None:
    _check(PARSERS[prefix], text)


@pytest.mark.parametrize("prefix,name", CASES)
def test_sample_cut_at_every_line(prefix: str, name: str) -> None:
    lines = (HISI / name).read_text().splitlines(keepends=True)
    for n in range(len(lines) + 1):
        _check(PARSERS[prefix], "".join(lines[:n]))


@pytest.mark.parametrize("prefix,name", CASES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_sample_cut_or_damaged_at_random_offsets(prefix: str, name: str, data) -> None:
    raw = (HISI / name).read_bytes()
    at = data.draw(st.integers(0, len(raw)))
    junk = data.draw(st.binary(max_size=8))
    _check(PARSERS[prefix], (raw[:at] + junk + raw[at:at + 40]).decode("utf-8", "replace"))
    _check(PARSERS[prefix], raw[:at].decode("utf-8", "replace"))
