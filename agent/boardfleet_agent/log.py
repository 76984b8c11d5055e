"""The agent's log: ``log.info(...)`` and friends, without importing ``logging``.

``logging`` and what it pulls (``traceback``, ``tokenize``, ``string``, ``weakref``) cost
0.9 MiB of RSS on Python 3.11 and 0.7 MiB on 3.8 (``benchmarks/RESULTS.md``, issue 18),
for one line per record. The agent's command calls :func:`to_stream`, after which records
are written as ``logging.basicConfig`` would write them, in the same format. Until then
(the agent's modules used as a library by the fleet service, by tests) every record goes
to the standard logger ``boardfleet.agent``, so handlers and ``caplog`` see it.
"""

import sys
import threading
import time
from typing import IO, Any, Optional

NAME = "boardfleet.agent"
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_LEVEL_NAMES = {number: name.upper() for name, number in LEVELS.items()}


class Log:
    """The subset of ``logging.Logger`` the agent uses, with printf-style arguments."""

    def __init__(self) -> None:
        self.stream: Optional[IO[str]] = None  # None: hand records to ``logging``
        self.level = LEVELS["info"]
        self._lock = threading.Lock()

    def debug(self, msg: str, *args: Any, exc_info: bool = False) -> None:
        self._log(10, msg, args, exc_info)

    def info(self, msg: str, *args: Any) -> None:
        self._log(20, msg, args, False)

    def warning(self, msg: str, *args: Any) -> None:
        self._log(30, msg, args, False)

    def error(self, msg: str, *args: Any) -> None:
        self._log(40, msg, args, False)

    def exception(self, msg: str, *args: Any) -> None:
        """An error with the traceback of the exception being handled."""
        self._log(40, msg, args, True)

    def _log(self, level: int, msg: str, args: tuple, exc_info: bool) -> None:
        stream = self.stream
        if stream is None:
            import logging

            logging.getLogger(NAME).log(level, msg, *args, exc_info=exc_info)
            return
        if level < self.level:
            return
        try:
            text = msg % args if args else msg
        except (TypeError, ValueError, KeyError):  # a wrong format string must not end a thread
            text = "%s %r" % (msg, args)
        now = time.time()
        line = "%s,%03d %s %s: %s\n" % (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)), int(now % 1 * 1000),
            _LEVEL_NAMES[level], NAME, text)
        if exc_info and sys.exc_info()[0] is not None:
            import traceback  # only when there is a traceback to print

            line += traceback.format_exc()
        with self._lock:
            try:
                stream.write(line)
                stream.flush()
            except (OSError, ValueError):  # stderr closed or full: the record is lost
                pass


log = Log()


def to_stream(level: str, stream: Optional[IO[str]] = None) -> None:
    """Write records at ``level`` ("debug" .. "error"; unknown: "info") and above to
    ``stream`` (stderr) from now on, as the agent's command does."""
    log.level = LEVELS.get(level.lower(), LEVELS["info"])
    log.stream = stream or sys.stderr
