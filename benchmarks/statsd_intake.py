"""Benchmark the StatsD intake of a real agent process on 127.0.0.1.

Starts ``boardfleet-agent`` with its intake on a free UDP port, then from a separate
sender process: blasts datagrams at full speed, then paces them at 10k/s and 50k/s, a
few seconds each. Counts come back from the agent's own ``/metrics`` (the histogram's
``_count`` per phase), so loss covers the kernel buffer and the agent. Also times
``/metrics`` idle and while the 50k/s phase runs. Not part of the test suite::

    python3 benchmarks/statsd_intake.py [--seconds 3]
"""

import argparse
import contextlib
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATAGRAM = b"%s:12.5|ms|#backend:bpu"


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sender(port: int, model: str, rate: float, seconds: float, out: "multiprocessing.Queue"):
    """Send for ``seconds``: as fast as possible if ``rate`` is 0, else paced per ms."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    data = DATAGRAM % model.encode()
    addr = ("127.0.0.1", port)
    sent = 0
    start = time.perf_counter()
    end = start + seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        due = int((now - start) * rate) + 1 if rate else sent + 200
        while sent < due:
            with contextlib.suppress(OSError):  # ENOBUFS: lost, still counted as sent
                sock.sendto(data, addr)
            sent += 1
        if rate:
            time.sleep(0.0005)
    out.put((sent, time.perf_counter() - start))


def metrics(base: str) -> Tuple[str, float]:
    t = time.perf_counter()
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        body = r.read().decode()
    return body, time.perf_counter() - t


def count(base: str, model: str) -> float:
    body, _ = metrics(base)
    want = 'board_inference_latency_seconds_count{backend="bpu",model="%s"}' % model
    for line in body.splitlines():
        if line.startswith(want):
            return float(line.split()[-1])
    return 0.0


def settled_count(base: str, model: str, timeout: float = 10.0) -> float:
    """The phase's count once the agent has drained its socket buffer."""
    last, deadline = -1.0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = count(base, model)
        if now == last:
            return now
        last = now
        time.sleep(0.3)
    return last


def phase(base: str, port: int, model: str, rate: float, seconds: float,
          scrape: bool = False) -> Tuple[int, float, float, List[float]]:
    """Run one sender; return (sent, send seconds, accepted, scrape times during it)."""
    q: multiprocessing.Queue = multiprocessing.Queue()
    p = multiprocessing.Process(target=sender, args=(port, model, rate, seconds, q))
    p.start()
    times: List[float] = []
    deadline = time.monotonic() + seconds * 0.9
    while scrape and time.monotonic() < deadline and len(times) < 200:
        times.append(metrics(base)[1])
        time.sleep(0.05)
    sent, took = q.get(timeout=seconds + 30)
    p.join(10)
    return sent, took, settled_count(base, model), times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each phase")
    args = ap.parse_args()
    http, udp = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "agent"))
    agent = subprocess.Popen(
        [sys.executable, "-m", "boardfleet_agent", "--sysroot",
         os.path.join(REPO, "tests", "fixtures", "generic"), "--collector.disable-defaults",
         "--listen", "127.0.0.1:%d" % http, "--statsd-listen", "127.0.0.1:%d" % udp],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = "http://127.0.0.1:%d" % http
    try:
        for _ in range(150):
            try:
                metrics(base)
                break
            except OSError:
                time.sleep(0.1)
        idle = [metrics(base)[1] for _ in range(20)]
        print("cores: %d, phase length: %.1f s" % (os.cpu_count() or 0, args.seconds))
        sent, took, got, _ = phase(base, udp, "max", 0, args.seconds)
        print("max rate: sent %d/s, accepted %d/s (%.1f %% of sent)"
              % (sent / took, got / took, 100.0 * got / sent))
        for rate in (10000, 50000):
            sent, took, got, busy = phase(base, udp, "paced%d" % rate, rate, args.seconds,
                                          scrape=rate == 50000)
            print("paced %d/s: sent %d (%d/s), accepted %d, loss %.2f %%"
                  % (rate, sent, sent / took, got, 100.0 * (sent - got) / sent))
        idle_ms = statistics.median(idle) * 1000
        busy_ms = statistics.median(busy) * 1000 if busy else float("nan")
        print("scrape /metrics median: idle %.2f ms, under 50k/s %.2f ms (ratio %.2f)"
              % (idle_ms, busy_ms, busy_ms / idle_ms))
    finally:
        agent.terminate()
        agent.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
