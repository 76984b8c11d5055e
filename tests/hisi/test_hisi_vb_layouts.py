"""VB parser: the SS928/Hi3403 (OT) lowercase header, and the parsing policy.

The OT text is rendered from the MPP source's format strings (tests/samples/hisi/SOURCES.md,
source id 66607713363): no live capture of an OT ``/proc/umap/vb`` was found.
"""

from typing import List, Tuple

import pytest
from hisi_samples import sample
from hypothesis import given, settings
from hypothesis import strategies as st

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.hisi_vb import VbPool, parse_vb
from boardfleet_agent.parsers.lines import Skips

DASH = "-" * 40
Pool = Tuple[int, int, int, int, int, int]  # id, is_comm, blk_sz, blk_cnt, free, min_free


def ot_vb(pools: List[Pool], busy_table: bool = True) -> str:
    """``/proc/umap/vb`` as the OT MPP's vb_proc_show prints it."""
    out = ["", "[VB] Version: [SS928V100_MPP_V2.0.2.2 B060 Release], Build Time[Jan  8 2025, "
           "10:11:12]", "", DASH + "vb pub config" + DASH, "max_pool_cnt", "%10d" % 768,
           DASH + "vb supplement attr" + DASH, "%8s%8s%9s" % ("config", "size", "vb_cnt"),
           "%8d%8d%9d" % (0, 0, sum(p[3] for p in pools)),
           DASH + "common pool config" + DASH,
           "pool_id" + "".join("%10u" % i for i in range(4)),
           "size   " + "".join("%10u" % (p[2] if i < len(pools) else 0)
                               for i, p in enumerate(pools[:4] + [pools[0]] * 4)),
           "count  " + "".join("%10u" % 0 for _ in range(4))]
    for pid, comm, size, cnt, free, min_free in pools:
        out.append(DASH + "mod_pool" + DASH)
        out.append("%-8s%-20s%-20s%-8s%-7s%-15s%-8s%-8s%-8s" % (
            "pool_id", "phys_addr", "virt_addr", "is_comm", "owner", "blk_sz", "blk_cnt",
            "free_list", "min_free"))
        out.append("%-8u0x%-18x0x%-18x%-8d%-7d%-15u%-8d%-8u%-8u" % (
            pid, 0x44000000 + pid * 0x1000000, 0, comm, -1 if comm else -2, size, cnt, free,
            min_free))
        if busy_table and free < cnt:
            out.append("blk   " + "".join("%6s" % n for n in ("vi", "vo", "vgs", "venc")))
            out.append("0     " + "".join("%-6u" % n for n in (1, 0, 0, 1)))
            out.append("sum   " + "".join("%-6u" % n for n in (1, 0, 0, 1)))
    return "\n".join(out) + "\n\n"


def test_ot_lowercase_header_with_glued_free_list_min_free() -> None:
    text = ot_vb([(0, 1, 3110400, 6, 4, 1), (1, 0, 4096, 62, 62, 60)])
    assert "free_listmin_free" in text  # what %-8s makes of the 9-character "free_list"
    assert parse_vb(text) == [VbPool(0, True, 3110400, 6, 4, 1),
                              VbPool(1, False, 4096, 62, 62, 60)]


def test_hi35xx_header_still_read() -> None:
    pools = parse_vb(sample("umap-vb.hi3516ev200.txt"))
    assert pools and pools[0].pool == 0


def test_unknown_columns_are_ignored() -> None:
    text = ("[VB] Version: [x]\npool_id  is_comm  blk_sz  blk_cnt  free_list  min_free  "
            "new_col\n3        1        1024    8        2          1         0x77   9\n")
    assert parse_vb(text) == [VbPool(3, True, 1024, 8, 2, 1)]


def test_damaged_pool_is_skipped_and_counted_the_others_kept() -> None:
    text = ot_vb([(0, 1, 3110400, 6, 4, 1), (1, 0, 4096, 62, 62, 60)])
    damaged = text.replace("3110400        6 ", "3110400        6x")
    skips = Skips("hisi_vb")
    assert parse_vb(damaged, skips) == [VbPool(1, False, 4096, 62, 62, 60)]
    assert skips.total == 1


def test_every_pool_unreadable_is_a_parse_error() -> None:
    text = ot_vb([(0, 1, 3110400, 6, 4, 1)])
    with pytest.raises(ParseError):
        parse_vb(text.replace("3110400 ", "3110x00 "))


POOLS = st.lists(st.tuples(st.integers(0, 767), st.integers(0, 1), st.integers(1, 2 ** 31),
                           st.integers(1, 64), st.integers(0, 64), st.integers(0, 64)),
                 min_size=1, max_size=5, unique_by=lambda p: p[0])


@settings(max_examples=150, deadline=None)
@given(POOLS, st.booleans(), st.data())
def test_cut_at_any_byte_keeps_the_pools_of_complete_lines(
        pools: List[Pool], busy: bool, data: st.DataObject) -> None:
    text = ot_vb(pools, busy)
    cut = data.draw(st.integers(0, len(text)))
    head = text[:cut]
    try:
        got = parse_vb(head)
    except ParseError:
        got = []
    complete = head[:head.rfind("\n") + 1]
    expected = [VbPool(p, c == 1, s, n, f, m) for p, c, s, n, f, m in pools
                if ("%-8u0x%-18x" % (p, 0x44000000 + p * 0x1000000)) in complete]
    assert got == expected
