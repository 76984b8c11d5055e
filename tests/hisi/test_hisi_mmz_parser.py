"""MMZ media-mem parser: exact values from real captures, and the format's variants."""

import pytest
from hisi_samples import sample

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.mmz import (
    KB,
    MmzSummary,
    largest_free_bytes,
    parse_media_mem,
    summary_consistent,
    used_bytes,
    zone_labels,
)


def test_hi3516ev200_b_seven_blocks_match_summary() -> None:
    mm = parse_media_mem(sample("media-mem.hi3516ev200.b.txt"))
    (zone,) = mm.zones
    assert (zone.name, zone.start, zone.end, zone.size_kb) == (
        "anonymous", 0x44000000, 0x47FFFFFF, 65536)
    assert len(zone.blocks) == 7
    assert [b.name for b in zone.blocks][-2:] == ["test", "test_cache"]
    assert zone.blocks[2].start == 0x4405B000 and zone.blocks[2].length_kb == 1620
    assert all(b.pids is None for b in zone.blocks)
    assert used_bytes(zone) == 4248 * KB
    assert mm.summary == MmzSummary(65536, 4248, 61288, 1, 7)
    assert summary_consistent(mm)
    # Blocks are packed from the zone start; the only hole runs to the zone end.
    assert largest_free_bytes(zone) == 0x48000000 - 0x44426000 == 61288 * KB


def test_hi3516ev200_a_five_blocks() -> None:
    mm = parse_media_mem(sample("media-mem.hi3516ev200.a.txt"))
    assert len(mm.zones[0].blocks) == 5
    assert used_bytes(mm.zones[0]) == 2200 * KB
    assert mm.summary == MmzSummary(65536, 2200, 63336, 1, 5)
    assert summary_consistent(mm)


def test_k230_copy_ten_blocks_aggregate_by_name() -> None:
    mm = parse_media_mem(sample("media-mem.k230-derived.vbpool.txt"))
    blocks = mm.zones[0].blocks
    assert len(blocks) == 10
    by_name = {}
    for b in blocks:
        by_name[b.name] = by_name.get(b.name, 0) + b.length_kb
    assert by_name == {"sup_nc": 20, "vb_pool": 40544, "vb_mod_pool": 44}
    assert mm.summary == MmzSummary(130048, 40608, 89440, 1, 10)
    assert summary_consistent(mm)


def test_hi3531_excerpt_a_three_zones_with_gfp_and_cut_summary() -> None:
    mm = parse_media_mem(sample("media-mem.hi3531.zones-excerpt-a.txt"))
    assert [(z.name, z.size_kb, len(z.blocks)) for z in mm.zones] == [
        ("anonymous", 288768, 0), ("jpeg", 5120, 0), ("ddr1", 516096, 0)]
    # end is inclusive: start + nBYTES - 1
    assert all(z.end - z.start + 1 == z.size_kb * KB for z in mm.zones)
    assert mm.summary is None  # "total size=809984KB(791MB),..." was cut by its author
    assert not summary_consistent(mm)
    assert largest_free_bytes(mm.zones[1]) == 5120 * KB


def test_hi3531_excerpt_b_zone_lines_without_gfp() -> None:
    text = "".join(sample("media-mem.hi3531.zones-excerpt-b.txt").splitlines(True)[:3])
    mm = parse_media_mem(text)
    assert [z.name for z in mm.zones] == ["ddr1", "jpeg", "anonymous"]
    assert mm.zones[0].start == 0xC0000000


OT_LINE = ('   *-MMB: phys(0x91A00000, 0x93A00FFF), kvirt=0xFFFFFFC010000000, flags=0x3, '
           'kernel_only=0, share_all=1 pid[815,812,0,0,0], length=32768KB,    name="nnn_model"')


@pytest.mark.parametrize("zone_line,block_line,pids", [
    # TAB before NAME/name, %p-style kvirt
    ('+---ZONE: PHYS(0x80000000, 0x80FFFFFF), GFP=0, nBYTES=16384KB,\tNAME="anonymous"',
     '   |-MMB: phys(0x80000000, 0x80000FFF), kvirt=0xc0a00000, flags=0x00000001, '
     'length=4KB,\tname="a"', None),
    # three spaces, TEE: unpadded hex, no GFP, no flags, "name ="
    ('+---ZONE: PHYS(0x8000000, 0x8ffffff), nBYTES=16384KB,   NAME="tee"',
     '   |-MMB: phys(0x8000000, 0x8000fff), kvirt=0x0, length=4KB,   name ="a"', None),
    # OT/SS928 64-bit with the pid list and the gap marker
    ('+---ZONE: PHYS(0x90000000, 0x9FFFFFFF), GFP=0, nBYTES=262144KB,    NAME="anonymous"',
     OT_LINE, (815, 812)),
])
def test_line_variants(zone_line: str, block_line: str, pids) -> None:
    mm = parse_media_mem(zone_line + "\r\n" + block_line + "\r\n")
    (zone,) = mm.zones
    (block,) = zone.blocks
    assert block.pids == pids
    assert zone.size_kb * KB == zone.end - zone.start + 1
    assert mm.summary is None


def test_ot_grain_rounding_and_holes() -> None:
    zone = ('+---ZONE: PHYS(0x91A00000, 0x93FFFFFF), GFP=0, nBYTES=38912KB,    NAME="z"\n')
    mm = parse_media_mem(zone + OT_LINE + "\n")
    (block,) = mm.zones[0].blocks
    # 32768 KB requested, but the range spans 32772 KB (end rounded up to 4 KB)
    assert block.end - block.start + 1 == 32772 * KB
    assert largest_free_bytes(mm.zones[0]) == 0x94000000 - 0x93A01000


def test_summary_with_unsigned_and_mismatch() -> None:
    text = ('+---ZONE: PHYS(0x44000000, 0x47FFFFFF), GFP=0, nBYTES=65536KB,    NAME="anonymous"\n'
            '   |-MMB: phys(0x44000000, 0x44000FFF), kvirt=0xC4B98000, flags=0x00000001, '
            'length=4KB,    name="x"\n\n---MMZ_USE_INFO:\n'
            ' total size=65536KB(64MB),used=8KB(0MB + 8KB),remain=65528KB(63MB + 1016KB),'
            'zone_number=1,block_number=1\n')
    mm = parse_media_mem(text)
    assert mm.summary == MmzSummary(65536, 8, 65528, 1, 1)
    assert not summary_consistent(mm)


def test_empty_file_has_no_zones() -> None:
    assert parse_media_mem("").zones == []
    assert parse_media_mem("\n\n").summary is None


@pytest.mark.parametrize("text", [
    '   |-MMB: phys(0x0, 0xFFF), kvirt=0x0, flags=0x0, length=4KB,    name="orphan"\n',
    '+---ZONE: PHYS(0x44000000, 0x47FFFFFF), GFP=0, nBYTES=65536KB\n',
    'random words\n',
    '+---ZONE: PHYS(0x48000000, 0x47FFFFFF), GFP=0, nBYTES=4KB,    NAME="backwards"\n',
])
def test_malformed_raises_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_media_mem(text)


def test_zone_labels_disambiguate_duplicate_names() -> None:
    text = ('+---ZONE: PHYS(0x90000000, 0x9FFFFFFF), GFP=0, nBYTES=262144KB, NAME="anonymous"\n'
            '+---ZONE: PHYS(0xA0000000, 0xA3FFFFFF), GFP=0, nBYTES=65536KB, NAME="anonymous"\n'
            '+---ZONE: PHYS(0xB0000000, 0xB0FFFFFF), GFP=0, nBYTES=16384KB, NAME="jpeg"\n')
    assert zone_labels(parse_media_mem(text).zones) == [
        "anonymous@0x90000000", "anonymous@0xA0000000", "jpeg"]


def test_hi3516ev200_capture_with_a_vb_pool_and_a_hole() -> None:
    """Third real capture (key1024/mpp_test VB doc): blocks, summary and the freed hole."""
    mm = parse_media_mem(sample("media-mem.hi3516ev200.c-vbpool.txt"))
    (zone,) = mm.zones
    assert [b.name for b in zone.blocks][-2:] == ["VbPool", "VGS_NodeBuf"]
    assert mm.summary == MmzSummary(65536, 11320, 54216, 1, 7)
    assert summary_consistent(mm)
    # 0x4403F000..0x4405AFFF (112 KB) was freed; the rest after VGS_NodeBuf is the largest.
    assert largest_free_bytes(zone) == 0x48000000 - 0x44B2A000
