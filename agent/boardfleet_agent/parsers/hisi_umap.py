"""Shared layout of HiSilicon ``/proc/umap/*`` files: titled sections of column tables.

A module file opens with ``[MOD] Version: [<SDK string>], Build Time[...]``, then
sections whose title line is dashes around a title (``-----VB PUB CONFIG-----``). In a
section, a line of column names is followed by one or more lines of values; long
tables wrap, so one section holds several (header, rows) groups.
"""

import re
from typing import List, NamedTuple, Optional

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.lines import Skips, complete_lines, skip

_TITLE = re.compile(r"^-{3,}(.*?)-*$")
_VERSION = re.compile(r"^\[(\w+)\]\s*Version:\s*\[([^\]]*)\]")
# A value token: integer, decimal, percentage or hex; anything else makes a header line.
_VALUE = re.compile(r"^(?:-?\d+(?:\.\d+)?%?|0x[0-9A-Fa-f]+)$")


class Group(NamedTuple):
    header: List[str]
    rows: List[List[str]]


class Section(NamedTuple):
    title: str  # "" for the lines before the first title
    lines: List[str]


def sdk_version(text: str) -> Optional[str]:
    """The SDK string of the first ``[MOD] Version: [...]`` line, if any."""
    for line in text.splitlines():
        m = _VERSION.match(line.strip())
        if m:
            return m.group(2).strip()
    return None


def sections(text: str) -> List[Section]:
    """Split a umap file at its dashed title lines (untitled dash lines start a new part)."""
    out = [Section("", [])]
    for raw in complete_lines(text):
        line = raw.rstrip("\r")
        m = _TITLE.match(line.strip())
        if m:
            out.append(Section(m.group(1).strip(), []))
        else:
            out[-1].lines.append(line)
    return out


def is_value_line(tokens: List[str]) -> bool:
    return bool(tokens) and all(_VALUE.match(t) for t in tokens)


def groups(lines: List[str], where: str, skips: Optional[Skips] = None) -> List[Group]:
    """(header, value rows) groups of a section; a value line with no header is skipped.

    A line starting with a value is a row even if a later token is not a number: the
    caller skips it only if it needs that column, so unknown text elsewhere is tolerated.
    """
    out: List[Group] = []
    for line in lines:
        tokens = line.split()
        if not tokens:
            continue
        if _VALUE.match(tokens[0]):
            if not out:
                skip(skips, line, where)
                continue
            out[-1].rows.append(tokens)
        else:
            out.append(Group(tokens, []))
    return out


def percent(token: str, where: str) -> float:
    """``"37%"`` or ``"37"`` (a percentage) -> 0.37."""
    try:
        return float(token.rstrip("%")) / 100.0
    except ValueError:
        raise ParseError("%s: %r is not a percentage" % (where, token[:40])) from None


def integer(token: str, where: str) -> int:
    try:
        return int(token, 0) if token.lower().startswith("0x") else int(token)
    except ValueError:
        raise ParseError("%s: %r is not an integer" % (where, token[:40])) from None
