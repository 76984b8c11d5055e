"""Remote shells for agentless probes: pooled SSH (paramiko) and busybox telnet.

A session is one long-lived ``sh`` on a board, fed one command line at a time; each
command is framed by sentinels (:class:`Frame`), so a probe costs one round trip and no
new process or SSH channel. :class:`~boardfleet.transports.pool.SessionPool` keeps one
session per board and reconnects with backoff.
"""

import re
from secrets import token_hex


class TransportError(Exception):
    """The board could not be reached, refused the login, or did not answer in time.

    Messages name the board and the cause, never a credential.
    """


class Session:
    """One logged-in shell on one board."""

    def run(self, command: str, timeout: float) -> str:
        """Run ``command`` and return its stdout; raise TransportError."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Frame:
    """A one-line command between sentinels that the shell prints but that its echo
    does not contain (``BF""S`` is echoed as typed and printed as ``BFS``)."""

    def __init__(self, command: str) -> None:
        if "\n" in command or "\r" in command:
            raise TransportError("commands must be one line")
        tag = token_hex(6).encode()
        self.line = 'echo BF""S%s; %s; echo BF""E%s' % (tag.decode(), command, tag.decode())
        self.start = b"BFS" + tag + b"\n"
        self.end = re.compile(b"BFE" + tag + rb"\r?\n")

    def output(self, raw: bytes) -> str:
        """The command's stdout out of everything read up to the end sentinel."""
        begin = raw.find(self.start)
        end = self.end.search(raw)
        if begin == -1 or end is None:
            raise TransportError("the answer lost its sentinels")
        return raw[begin + len(self.start):end.start()].decode("utf-8", "replace")
