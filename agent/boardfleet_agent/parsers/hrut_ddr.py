"""Parser for ``hrut_ddr -t all -p <ms>`` output (Horizon DDR bandwidth per AXI port).

Captured on an RDK X5 (shared/samples/horizon/x5_hrut_ddr_all.txt). The tool prints a
block per period until killed::

    Time 364160.876s
    MB/S   P0:CPU   P1:BPU  P2:VIN  P3:CODEC  P4:GPU      SUM
    Read :    110     4035        0        0        0     4145
    Write:    103     1175        0        0        0     1278

Column names come from the header (other SoCs have other ports). Pure; raises only
ParseError.
"""

import re
from typing import Dict, List, NamedTuple, Optional

from boardfleet_agent.errors import ParseError


class DdrSample(NamedTuple):
    time: float  # seconds since boot, from the ``Time`` line
    read: Dict[str, int]  # column name as printed (CPU, BPU, ..., SUM) -> MB/s
    write: Dict[str, int]


_TIME = re.compile(r"^Time\s+(\d+(?:\.\d+)?)s$")
_COLUMN = re.compile(r"^(?:P\d+:)?(\w+)$")
_NUMBER = re.compile(r"^[0-9]+$")


def parse_last_block(text: str) -> DdrSample:
    """The last complete block; a block cut off by the tool being killed is ignored."""
    last: Optional[DdrSample] = None
    time: Optional[float] = None
    columns: List[str] = []
    read: Optional[Dict[str, int]] = None
    for raw in text.splitlines():
        line = raw.strip()
        m_time = _TIME.match(line)
        if m_time:
            time, columns, read = float(m_time.group(1)), [], None
        elif line.startswith("MB/S") and time is not None:
            columns = _header(line)
        elif ":" in line and columns and time is not None:
            label, _, rest = line.partition(":")
            values = _values(rest, len(columns))
            if label.strip() == "Read" and values is not None:
                read = dict(zip(columns, values))
            elif label.strip() == "Write" and values is not None and read is not None:
                last = DdrSample(time, read, dict(zip(columns, values)))
                time, columns, read = None, [], None
    if last is None:
        if "Open failed" in text:
            raise ParseError("hrut_ddr: DDR monitor busy (Error: Open failed!)")
        raise ParseError("hrut_ddr: no complete sample block in %d bytes" % len(text))
    return last


def _header(line: str) -> List[str]:
    names = []
    for word in line.split()[1:]:
        m = _COLUMN.match(word)
        if not m:
            return []
        names.append(m.group(1))
    return names


def _values(rest: str, count: int) -> Optional[List[int]]:
    words = rest.split()
    if len(words) != count or not all(_NUMBER.match(w) for w in words):
        return None
    return [int(w) for w in words]
