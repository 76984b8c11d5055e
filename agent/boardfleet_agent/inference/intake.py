"""The UDP listener: receives StatsD datagrams on a thread and hands each to a handler."""

import contextlib
import os
import socket
import threading
from typing import Callable, Optional, Tuple

from boardfleet_agent.log import log

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
        # Not a LoopThread: it blocks in recv, woken by a datagram to itself; polling a
        # pipe as well would cost a syscall per datagram.
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

    def kernel_drops(self) -> Optional[int]:
        """Datagrams the kernel dropped from this socket (``drops`` in /proc/net/udp).

        None where the kernel does not report it or the socket is not bound.
        """
        sock = self._sock
        if sock is None:
            return None
        try:
            inode = str(os.fstat(sock.fileno()).st_ino)
        except OSError:
            return None
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            found = _drops(table, inode)
            if found is not None:
                return found
        return None

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


def _drops(table: str, inode: str) -> Optional[int]:
    """The ``drops`` column of the socket with ``inode`` in a /proc/net/udp table."""
    try:
        with open(table, encoding="ascii", errors="replace") as f:
            header = f.readline().split()
            if "drops" not in header:
                return None
            # Header words and row fields line up after "tx_queue rx_queue" and
            # "tr tm->when" became one field each: index from the end.
            back = len(header) - header.index("drops")
            ino_back = len(header) - header.index("inode")
            for line in f:
                fields = line.split()
                if len(fields) >= ino_back and fields[-ino_back] == inode:
                    return int(fields[-back])
    except (OSError, ValueError):
        return None
    return None
