"""Report inference latency and model loads to the board agent from an app.

Standard library only (the file can be copied into an app on its own) and safe inside
an inference loop: every call is one non-blocking UDP ``sendto`` whose errors are
swallowed, so a missing or busy agent never slows or breaks the app::

    from boardfleet_agent.inference.report import report_latency, timed
    with timed("yolov8"):
        outputs = model.run(inputs)

The agent address is ``$BOARDFLEET_STATSD`` (``HOST:PORT``), else ``127.0.0.1:8125``.
"""

import os
import socket
import time
from contextlib import contextmanager
from typing import Dict, Iterator, Optional, Tuple

DEFAULT_ADDRESS = "127.0.0.1:8125"

_sock: Optional[socket.socket] = None
_target: Tuple[str, int] = ("127.0.0.1", 8125)


def statsd_line(name: str, value: float, mtype: str, tags: Dict[str, str]) -> str:
    """``name:value|type|#k:v,...``, the form the agent parses."""
    line = "%s:%r|%s" % (name, float(value), mtype)
    if tags:
        line += "|#" + ",".join("%s:%s" % kv for kv in tags.items())
    return line


def send(line: str) -> None:
    """Send one StatsD line to the agent; never raises, never blocks."""
    global _sock, _target
    try:
        if _sock is None:
            env = os.environ.get("BOARDFLEET_STATSD", DEFAULT_ADDRESS)
            host, _, port = env.rpartition(":")
            _target = (host.strip("[]") or "127.0.0.1", int(port))
            s = socket.socket(socket.AF_INET6 if ":" in _target[0] else socket.AF_INET,
                              socket.SOCK_DGRAM)
            s.setblocking(False)
            _sock = s
        _sock.sendto(line.encode("utf-8", "replace"), _target)
    except (OSError, ValueError):
        pass  # telemetry must never hurt the app


def report_latency(model: str, seconds: float, **tags: str) -> None:
    """Report one inference of ``model`` that took ``seconds`` (extra tags optional)."""
    send(statsd_line("inference", seconds * 1000.0, "ms", dict(model=model, **tags)))


@contextmanager
def timed(model: str, **tags: str) -> Iterator[None]:
    """Time the block (or, as ``@timed(model)``, each call) and report it."""
    start = time.perf_counter()
    try:
        yield
    finally:
        report_latency(model, time.perf_counter() - start, **tags)


@contextmanager
def model_load(model: str, stage: str = "first") -> Iterator[None]:
    """Wrap loading ``model`` (``stage`` first or warm): load time and memory increase."""
    tags: Dict[str, str] = {"model": model, "stage": stage, "pid": str(os.getpid())}
    send(statsd_line("model_load_begin", 1, "c", tags))
    start = time.perf_counter()
    yield
    send(statsd_line("model_load", (time.perf_counter() - start) * 1000.0, "ms", tags))
