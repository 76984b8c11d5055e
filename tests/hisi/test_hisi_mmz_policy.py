"""media-mem and the parsing policy: unknown lines, extra fields and cuts at any byte.

Built on the real Hi3516EV200 capture: whatever is inserted or cut, the blocks of the
complete, known lines are exactly what the parser returns.
"""

from typing import List

from hisi_samples import sample
from hypothesis import given, settings
from hypothesis import strategies as st

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.lines import Skips
from boardfleet_agent.parsers.mmz import parse_media_mem

REAL = sample("media-mem.hi3516ev200.a.txt")
UNKNOWN = st.sampled_from(["[MMZ] debug: late line", "   |-XYZ: something new", "####",
                           "zone_number=?"])


def _blocks(text: str) -> List[str]:
    try:
        mm = parse_media_mem(text)
    except ParseError:
        return []
    return [b.name for z in mm.zones for b in z.blocks]


def test_unknown_lines_are_skipped_and_counted() -> None:
    lines = REAL.splitlines(True)
    text = lines[0] + "something the SDK added\n" + "".join(lines[1:])
    skips = Skips("mmz")
    mm = parse_media_mem(text, skips)
    assert skips.total == 1 and mm.summary is not None
    assert [b.name for z in mm.zones for b in z.blocks] == _blocks(REAL)


def test_blocks_under_an_unreadable_zone_are_skipped_not_misfiled() -> None:
    lines = REAL.splitlines(True)
    text = "".join(lines) + "+---ZONE: PHYS(0x9 broken\n" + lines[1]
    skips = Skips("mmz")
    mm = parse_media_mem(text, skips)
    assert [b.name for z in mm.zones for b in z.blocks] == _blocks(REAL)
    assert skips.total == 2


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), UNKNOWN), max_size=4),
       st.sampled_from(["", ", extra=1", " tail"]), st.data())
def test_complete_known_lines_survive_insertions_extra_fields_and_any_cut(
        inserts, extra: str, data: st.DataObject) -> None:
    lines = [line.rstrip("\n") for line in REAL.splitlines()]
    # Fields a newer SDK might add go where the OT fields are: between kvirt and length.
    lines = [line.replace("length=", "x=1" + extra + ", length=") if "-MMB:" in line
             else line for line in lines]
    for pos, junk in sorted(inserts, reverse=True):
        # Junk goes before a zone line or after the blocks, never between a zone and them.
        at = 0 if pos % 2 else len(lines)
        lines.insert(at, junk)
    text = "\n".join(lines) + "\n"
    cut = data.draw(st.integers(0, len(text)))
    head = text[:cut]
    complete = head[:head.rfind("\n") + 1]
    expected = [line.split('name="')[1].rstrip('"') for line in complete.splitlines()
                if "-MMB:" in line]
    assert _blocks(head) == expected
