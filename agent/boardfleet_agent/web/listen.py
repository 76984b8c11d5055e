"""Listen addresses as the flags and config give them (``--listen``, ``[statsd] listen``)."""

from typing import Tuple


def parse_listen(value: str) -> Tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or ``:PORT`` -> (host, port); ValueError if bad."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("listen address must be HOST:PORT, got %r" % value)
    return host.strip("[]") or "0.0.0.0", int(port)
