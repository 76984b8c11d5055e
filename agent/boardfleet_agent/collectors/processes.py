"""CPU and resident memory of configured processes, grouped by process name.

Like process-exporter, series carry the process name (``comm``), never a PID: all
processes with the same name add up into one group.
"""

import fnmatch
import os
from typing import Dict, Iterator, List

from boardfleet_agent.errors import NoData, ParseError
from boardfleet_agent.families import CounterMetricFamily, GaugeMetricFamily, Metric
from boardfleet_agent.parsers.procfs import parse_pid_stat
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

PAGE_SIZE = 4096  # bytes per page on the arm/arm64 boards this agent targets

DEFAULT_NAMES = [
    "hrt_model_exec", "hrt_ucp_monitor", "sample_nnie*", "sample_svp*",
    "qnn-net-run", "snpe-net-run", "boardfleet-agen*",
]


def page_size() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return PAGE_SIZE


@register
class ProcessesCollector(Collector):
    name = "processes"
    paths = ("/proc/[0-9]*/stat",)
    agentless = False  # one read per process: too heavy for a probed busybox board
    default_interval = 5.0  # one read per process: not every second
    defaults = {"names": DEFAULT_NAMES}

    def collect(self, src: Source) -> Iterator[Metric]:
        patterns: List[str] = list(self.settings["names"])
        if not patterns:
            raise NoData("no process names configured")
        cpu: Dict[str, float] = {}
        rss: Dict[str, float] = {}
        count: Dict[str, int] = {}
        pagesize = page_size()
        for path in src.glob("/proc/[0-9]*/stat"):
            try:
                st = parse_pid_stat(src.read_text(path))
            except (OSError, ParseError):
                continue  # the process exited between listing and reading
            if not any(fnmatch.fnmatchcase(st.comm, p) for p in patterns):
                continue
            cpu[st.comm] = cpu.get(st.comm, 0.0) + st.cpu_seconds
            rss[st.comm] = rss.get(st.comm, 0.0) + st.rss_pages * pagesize
            count[st.comm] = count.get(st.comm, 0) + 1
        c = CounterMetricFamily("board_process_cpu_seconds_total",
                                "CPU seconds used by running processes of this name.",
                                labels=["process"])
        r = GaugeMetricFamily("board_process_resident_memory_bytes",
                              "Resident memory of running processes of this name.",
                              labels=["process"])
        n = GaugeMetricFamily("board_process_instances",
                              "Running processes of this name.", labels=["process"])
        for name in sorted(count):
            c.add_metric([name], cpu[name])
            r.add_metric([name], rss[name])
            n.add_metric([name], count[name])
        yield c
        yield r
        yield n
