"""Parsers for devfreq-style frequency files (``cur_freq``, ``available_frequencies``).

Used for Snapdragon DDR: GKI ``bus_dcvs/DDR`` (kHz) and pre-GKI devfreq bandwidth nodes,
whose "frequency" is a bandwidth vote in MB/s. Pure functions; on bad text they raise
:class:`~boardfleet_agent.errors.ParseError` only.
"""

from typing import List

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.sysfs import parse_int, parse_ints


def parse_frequency(text: str, where: str) -> int:
    """A ``cur_freq`` file: one non-negative integer (unit depends on the node)."""
    value = parse_int(text, where)
    if value < 0:
        raise ParseError("%s: negative frequency %d" % (where, value))
    return value


def parse_available_frequencies(text: str, where: str) -> List[int]:
    """An ``available_frequencies`` file: space-separated integers, trailing space allowed."""
    values = parse_ints(text, where)
    if not values or min(values) < 0 or max(values) == 0:
        raise ParseError("%s: no usable frequencies in %r" % (where, text.strip()[:80]))
    return values


def frequency_ratio(current: int, available: List[int]) -> float:
    """``current ÷ max(available)``, capped at 1 (a boost vote may exceed the table)."""
    return min(1.0, current / max(available))
