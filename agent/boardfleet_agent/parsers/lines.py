"""The parsing policy's shared pieces: complete lines, and lines skipped as unknown.

Every table parser reads the complete lines of a file (a last line without its newline
was cut short by the read and is dropped), reads tables by their header, ignores columns
it does not know, and hands each line that matches no known shape to a :class:`Skips`
instead of failing: the collector counts them in ``board_collector_skipped_lines_total``
and logs the first one.
"""

import threading
from typing import List, Optional

from boardfleet_agent.log import log


def complete_lines(text: str) -> List[str]:
    """The file's lines, without a last line that lacks its newline (cut short).

    Lines end at ``\n`` only, as the kernel writes them (a ``\r`` before it is dropped):
    not at the other characters ``str.splitlines`` breaks on (``\x0b``, ``\x0c``,
    ``\x1c``-``\x1e``, ``\x85``, ``\u2028``, ...), which an app-chosen name (a process
    comm, a dma-buf name) may hold.
    """
    lines = text.split("\n")
    lines.pop()  # "" after the last newline, or a last line cut short
    return [line[:-1] if line.endswith("\r") else line for line in lines]


class Skips:
    """Counts the lines a collector's parsers skipped; logs the first one once."""

    def __init__(self, collector: str = "") -> None:
        self.collector = collector
        self.total = 0
        self.first: Optional[str] = None
        self._lock = threading.Lock()

    def add(self, line: str, where: str) -> None:
        with self._lock:
            self.total += 1
            if self.first is not None:
                return
            self.first = line[:120]
        log.warning("collector %s: skipped a line %s does not know: %r (further unknown "
                    "lines are only counted in board_collector_skipped_lines_total)",
                    self.collector or "?", where, self.first)


def skip(skips: Optional[Skips], line: str, where: str) -> None:
    """Record ``line`` as skipped, if the caller counts skips."""
    if skips is not None:
        skips.add(line, where)
