"""Parser for Horizon BPU sysfs values (``/sys/devices/system/bpu``, kernel bpu_debug.c)."""

from typing import Optional

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.sysfs import parse_int


def parse_ratio(text: str, where: str) -> Optional[float]:
    """A ``ratio`` file (integer busy %) -> 0..1, or None when the driver says
    ``bpu not inited!`` / ``core not inited!`` instead of a number."""
    if text.strip().endswith("not inited!"):
        return None
    percent = parse_int(text, where)
    if not 0 <= percent <= 100:
        raise ParseError("%s: %d%% is not a percentage" % (where, percent))
    return percent / 100.0
