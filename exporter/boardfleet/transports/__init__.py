"""Remote shells for agentless probes: pooled SSH (paramiko) and busybox telnet.

A transport runs one ``sh`` command line on a board and returns its stdout, within a
deadline. :class:`~boardfleet.transports.pool.SessionPool` keeps one open session per
board and reconnects with backoff.
"""


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
