"""Loopback ports and waiting for servers."""

import socket
import time
import urllib.request


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free right now (TCP by default; ``socket.SOCK_DGRAM`` for UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 15.0, context=None) -> str:
    """GET ``url`` until it answers 200; return the body. Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    last: Exception = TimeoutError(url)
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as r:
                return r.read().decode()
        except OSError as e:
            last = e
            time.sleep(0.1)
    raise TimeoutError("%s did not answer within %.0fs: %s" % (url, timeout, last))
