"""Parsers for Adreno kgsl files: sysfs ``/sys/class/kgsl/...`` and debugfs ``proc/<pid>/mem``.

Formats are the printf strings of qualcomm-linux/kgsl (docs/formats/qualcomm.md §2).
Pure functions; on bad text they raise :class:`~boardfleet_agent.errors.ParseError` only.
"""

import re
from typing import Dict, Optional

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.lines import Skips, complete_lines, skip
from boardfleet_agent.parsers.sysfs import first_line, parse_int, parse_ints

# Entry types of kgsl_debugfs.c: gpumem, usermem, ion, unknown (lower-case words).
_MEM_TYPE = re.compile(r"[a-z]+$")


def parse_gpubusy(text: str) -> float:
    """``gpubusy`` (``"%7d %7d"``: busy, total of the last window) -> busy ratio 0..1.

    The values are a snapshot of the last sampling window, not counters; a total of 0
    means the GPU was off for the whole window, i.e. idle.
    """
    values = parse_ints(text, "kgsl gpubusy")
    if len(values) != 2:
        raise ParseError("kgsl gpubusy: expected 'busy total', got %r" % text.strip()[:40])
    busy, total = values
    if busy < 0 or total < 0:
        raise ParseError("kgsl gpubusy: negative value in %r" % text.strip()[:40])
    if total == 0:
        return 0.0
    # busy can overtake total by a tick when the window closes mid-read.
    return min(1.0, busy / total)


def parse_busy_percentage(text: str) -> float:
    """``gpu_busy_percentage`` (``"%d %%"``, e.g. ``12 %``) -> ratio 0..1."""
    value = parse_int(text, "kgsl gpu_busy_percentage")
    if not 0 <= value <= 100:
        raise ParseError("kgsl gpu_busy_percentage: %d is not a percentage" % value)
    return value / 100.0


def parse_gpu_model(text: str) -> str:
    """``gpu_model`` (``Adreno (TM) 650``, newer ``Adreno660v1``; no newline in code)."""
    model = first_line(text)
    if not model or not model.isprintable():
        raise ParseError("kgsl gpu_model: unreadable model %r" % text[:40])
    return model


def parse_bytes(text: str, where: str) -> int:
    """A per-process memory file (``kernel``, ``user``, ``ion``: ``"%lld"`` bytes)."""
    value = parse_int(text, where)
    if value < 0:
        raise ParseError("%s: negative byte count %d" % (where, value))
    return value


def parse_proc_mem(text: str, skips: Optional[Skips] = None) -> Dict[str, int]:
    """debugfs ``kgsl/proc/<pid>/mem`` -> bytes per entry ``type`` (gpumem, usermem, ion).

    Rows are ``gpuaddr useraddr size id flags type usage ...``; ``usage`` may hold spaces
    (``VK/others( 38)``) and the trailing columns differ between kgsl versions
    (``mapcount``/``mapsize``/``mapcnt``, optional ``inode``), so only the first six
    whitespace-separated fields are read. A row of another shape is skipped and counted;
    a last row cut short is dropped.
    """
    out: Dict[str, int] = {}
    for line in complete_lines(text):
        fields = line.split()
        if not fields or fields[0] == "gpuaddr":
            continue
        size = fields[2] if len(fields) > 2 else ""
        if len(fields) < 7 or not _MEM_TYPE.match(fields[5]) or not (
                size.isdigit() and size.isascii()):
            skip(skips, line, "kgsl mem")
            continue
        out[fields[5]] = out.get(fields[5], 0) + int(size)
    return out
