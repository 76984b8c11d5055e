"""Parser for HiSilicon MMZ ``/proc/media-mem`` (or ``/proc/umap/media-mem``).

Grammar (docs/formats/hisi.md §1): per zone a ``+---ZONE:`` header, then one
``|-MMB:`` / ``*-MMB:`` line per block, then after all zones a ``---MMZ_USE_INFO:``
summary covering every zone. Handles: GFP present or not, any gap before ``NAME=``,
unpadded hex (TEE), 8/16-digit kvirt, no ``flags=``, ``name =``, the OT/SS928
``kernel_only=.., share_all=.. pid[a,b,c,d,e]`` fields, CRLF, and ``%u`` summaries.

Parsing policy (docs/metrics.md): a last line cut short is dropped, so a file cut inside
a block line and one cut inside the summary line read the same (complete blocks, no
summary); a line of no known shape is skipped and counted, and so are the blocks under
a zone header that could not be read (they would otherwise land in the previous zone).
"""

import re
from typing import List, NamedTuple, Optional, Tuple

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.lines import Skips, complete_lines, skip

KB = 1024

_ZONE = re.compile(
    r'^\+---ZONE:\s*PHYS\(0x([0-9A-Fa-f]+),\s*0x([0-9A-Fa-f]+)\)(?:,\s*GFP=(\d+))?'
    r',\s*nBYTES=(\d+)KB,\s*NAME="(.*)"\s*$')
# The fields before ``length=`` never hold ``length=``: one place to try, so a corrupt
# line with many ``length=`` is matched in linear time (not quadratic, issue 13).
_MMB = re.compile(
    r'^\s*[|*]-MMB:\s*phys\(0x([0-9A-Fa-f]+),\s*0x([0-9A-Fa-f]+)\),((?:(?!length=).)*)'
    r'length=(\d+)KB,\s*name\s?=\s?"(.*)"\s*$')
_PIDS = re.compile(r"pid\[([-\d,\s]*)\]")
_SUMMARY = re.compile(
    r"^\s*total size=(\d+)KB\(\d+MB\),\s*used=(\d+)KB\([^)]*\),\s*remain=(\d+)KB\([^)]*\),"
    r"\s*zone_number=(\d+),\s*block_number=(\d+)\s*$")


class MmzBlock(NamedTuple):
    start: int  # physical address of the first byte
    end: int  # last byte, inclusive (rounded up to the 4 KB grain)
    length_kb: int  # requested size in KB, rounded down
    name: str
    pids: Optional[Tuple[int, ...]]  # OT/SS928 owner PIDs; None on SDKs without them


class MmzZone(NamedTuple):
    name: str
    start: int
    end: int  # inclusive
    size_kb: int
    blocks: List[MmzBlock]


class MmzSummary(NamedTuple):
    total_kb: int
    used_kb: int
    remain_kb: int
    zones: int
    blocks: int


class MediaMem(NamedTuple):
    zones: List[MmzZone]
    summary: Optional[MmzSummary]  # None: summary missing, the file was cut short


def parse_media_mem(text: str, skips: Optional[Skips] = None) -> MediaMem:
    """media-mem text -> zones with their blocks, and the summary if present.

    An empty file (MMZ module not loaded) gives no zones. Text with lines but not one
    zone or summary that could be read raises ParseError.
    """
    zones: List[MmzZone] = []
    summary = None
    in_zone = False  # False after a zone header that could not be read
    seen = False
    for raw in complete_lines(text):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped == "---MMZ_USE_INFO:":
            continue
        seen = True
        m = _ZONE.match(stripped)
        if m:
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            in_zone = end >= start
            if in_zone:
                zones.append(MmzZone(m.group(5), start, end, int(m.group(4)), []))
            else:
                skip(skips, line, "media-mem")
            continue
        m = _MMB.match(line)
        block = _block(m) if m else None
        if block is not None and in_zone:
            zones[-1].blocks.append(block)
            continue
        m = _SUMMARY.match(stripped)
        if m:
            summary = MmzSummary(*(int(g) for g in m.groups()))
            continue
        if stripped.startswith("+---ZONE"):
            in_zone = False
        skip(skips, line, "media-mem")
    if seen and not zones and summary is None:
        raise ParseError("media-mem: no zone or summary line could be read")
    return MediaMem(zones, summary)


def _block(m: "re.Match") -> Optional[MmzBlock]:
    """The block of an MMB line, or None if its range or pid list is damaged."""
    start, end = int(m.group(1), 16), int(m.group(2), 16)
    if end < start:
        return None
    pids: Optional[Tuple[int, ...]] = None
    pm = _PIDS.search(m.group(3))
    if pm:
        try:
            # Unused slots of the 5-entry pid array print as 0.
            pids = tuple(p for p in (int(x) for x in pm.group(1).split(",") if x.strip())
                         if p > 0)
        except ValueError:
            return None
    return MmzBlock(start, end, int(m.group(4)), m.group(5), pids)


def used_bytes(zone: MmzZone) -> int:
    """Sum of the zone's block lengths, as the kernel's own ``used`` counts them."""
    return sum(b.length_kb for b in zone.blocks) * KB


def largest_free_bytes(zone: MmzZone) -> int:
    """Largest hole between the zone's sorted block ranges, or before its end.

    Block ends are rounded up to the 4 KB allocation grain, so the holes are exact.
    """
    cursor = zone.start
    largest = 0
    for b in sorted(zone.blocks, key=lambda blk: (blk.start, blk.end)):
        start = min(max(b.start, zone.start), zone.end + 1)
        largest = max(largest, start - cursor)
        cursor = max(cursor, min(b.end, zone.end) + 1)
    return max(largest, zone.end + 1 - cursor)


def summary_consistent(mm: MediaMem) -> bool:
    """True if the summary line agrees with the sums of the zone and block lines."""
    s = mm.summary
    if s is None:
        return False
    used_kb = sum(b.length_kb for z in mm.zones for b in z.blocks)
    return (s.total_kb == sum(z.size_kb for z in mm.zones) and s.used_kb == used_kb
            and s.remain_kb == s.total_kb - s.used_kb and s.zones == len(mm.zones)
            and s.blocks == sum(len(z.blocks) for z in mm.zones))


def zone_labels(zones: List[MmzZone]) -> List[str]:
    """One distinct label per zone: a name used twice gets ``@0x<start>`` on each use."""
    names = [z.name or "unnamed" for z in zones]
    labels: List[str] = []
    for z, name in zip(zones, names):
        label = "%s@0x%X" % (name, z.start) if names.count(name) > 1 else name
        if label in labels:  # same name and start: only in corrupt files
            label = "%s#%d" % (label, len(labels))
        labels.append(label)
    return labels
