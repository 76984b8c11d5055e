"""The agent's own CPU, memory and file descriptors (``process_*``), from /proc/self.

The families prometheus_client's ``ProcessCollector`` exports, with its names, help
texts and values, for overhead and soak checks; read on every scrape.
"""

import os
from typing import List

from boardfleet_agent.families import CounterMetricFamily, GaugeMetricFamily, Metric

_TICKS = float(os.sysconf("SC_CLK_TCK"))
_PAGESIZE = os.sysconf("SC_PAGESIZE")


def _boot_time() -> float:
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def _read(path: str) -> bytes:
    """A small proc file's bytes, without the buffered file objects ``open`` builds
    (half of the reading time)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks: List[bytes] = []
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


class SelfStats:
    """A collector of the agent process's own ``process_*`` families."""

    def __init__(self, proc: str = "/proc/self") -> None:
        self.proc = proc
        try:
            self.btime = _boot_time()
        except (OSError, ValueError, IndexError):
            self.btime = 0.0  # no /proc: nothing to export

    def collect(self) -> List[Metric]:
        if not self.btime:
            return []
        out: List[Metric] = []
        try:
            parts = _read(os.path.join(self.proc, "stat")).split(b")")[-1].split()
            out += [
                GaugeMetricFamily("process_virtual_memory_bytes",
                                  "Virtual memory size in bytes.", value=float(parts[20])),
                GaugeMetricFamily("process_resident_memory_bytes",
                                  "Resident memory size in bytes.",
                                  value=float(parts[21]) * _PAGESIZE),
                GaugeMetricFamily("process_start_time_seconds",
                                  "Start time of the process since unix epoch in seconds.",
                                  value=float(parts[19]) / _TICKS + self.btime),
                CounterMetricFamily("process_cpu_seconds_total",
                                    "Total user and system CPU time spent in seconds.",
                                    value=(float(parts[11]) + float(parts[12])) / _TICKS),
            ]
        except (OSError, ValueError, IndexError):
            pass
        try:
            max_fds = None
            for line in _read(os.path.join(self.proc, "limits")).splitlines():
                if line.startswith(b"Max open file"):
                    max_fds = float(line.split()[3])
                    break
            out.append(GaugeMetricFamily("process_open_fds", "Number of open file descriptors.",
                                         len(os.listdir(os.path.join(self.proc, "fd")))))
            if max_fds is not None:
                out.append(GaugeMetricFamily("process_max_fds",
                                             "Maximum number of open file descriptors.",
                                             value=max_fds))
        except (OSError, ValueError, IndexError):
            pass
        return out
