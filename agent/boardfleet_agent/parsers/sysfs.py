"""Parsers for one-value sysfs files (integers, millidegrees, frequency lists)."""

from typing import List

from boardfleet_agent.errors import ParseError


def parse_int(text: str, where: str = "value") -> int:
    """A file holding one integer, such as ``46837\\n`` or ``12 %``."""
    raw = text.strip().rstrip("%").strip()
    try:
        return int(raw)
    except ValueError:
        raise ParseError("%s: %r is not an integer" % (where, text.strip()[:40])) from None


def parse_ints(text: str, where: str = "value") -> List[int]:
    """A file holding whitespace-separated integers (``available_frequencies``)."""
    out = []
    for tok in text.split():
        try:
            out.append(int(tok))
        except ValueError:
            raise ParseError("%s: %r is not an integer" % (where, tok[:40])) from None
    return out


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""
