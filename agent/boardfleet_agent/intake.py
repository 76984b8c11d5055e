"""The UDP listener: receives StatsD datagrams on a thread and hands each to a handler."""

import contextlib
import logging
import socket
import threading
from typing import Callable, Optional, Tuple

log = logging.getLogger("boardfleet.agent")

# Kernel receive buffer asked for (capped by net.core.rmem_max): absorbs bursts while
# the intake thread is descheduled.
RCVBUF_BYTES = 4 << 20


class UdpIntake:
    """Binds ``addr`` and calls ``handle(datagram)`` for every datagram, in one thread."""

    def __init__(self, addr: Tuple[str, int], handle: Callable[[bytes], None]) -> None:
        self.addr = addr
        self.handle = handle
        self.bound: Optional[Tuple[str, int]] = None
        self._sock: Optional[socket.socket] = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="statsd", daemon=True)

    def start(self) -> bool:
        """Bind and start receiving; False (logged) if the address cannot be bound."""
        family = socket.AF_INET6 if ":" in self.addr[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
            sock.bind(self.addr)
        except OSError as e:
            sock.close()
            log.warning("statsd intake cannot listen on %s:%d: %s", *self.addr, e)
            return False
        self._sock = sock
        self.bound = sock.getsockname()[:2]
        self._thread.start()
        return True

    def stop(self) -> None:
        if self._sock is None:
            return
        self._stopping = True
        host, port = self.bound or ("", 0)
        wake = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        # A blocking recv has no timeout to poll a flag: wake it with an empty datagram.
        with contextlib.suppress(OSError):
            self._sock.sendto(b"", (wake, port))
        self._thread.join(2.0)
        self._sock.close()

    def _loop(self) -> None:
        sock = self._sock
        assert sock is not None
        recv = sock.recv
        handle = self.handle
        while not self._stopping:
            try:
                data = recv(65536)
            except OSError:
                if self._stopping:
                    return
                continue
            if data:
                try:
                    handle(data)
                except Exception:
                    log.exception("statsd datagram handler failed")
