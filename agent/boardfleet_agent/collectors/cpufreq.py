"""Current CPU frequency per core, from cpufreq sysfs."""

import re
from typing import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from boardfleet_agent.errors import NoData
from boardfleet_agent.parsers.sysfs import parse_int
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

FREQ_GLOB = "/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq"
_CPU = re.compile(r"/cpu(\d+)/")


@register
class CpuFreqCollector(Collector):
    name = "cpufreq"
    help = "current CPU frequency per core (cpufreq scaling_cur_freq)"
    paths = (FREQ_GLOB,)

    def collect(self, src: Source) -> Iterator[Metric]:
        files = src.glob(FREQ_GLOB)
        if not files:
            raise NoData("no cpufreq")
        fam = GaugeMetricFamily("board_cpu_frequency_hertz",
                                "Current CPU frequency.", labels=["cpu"])
        rows = []
        for path in files:
            m = _CPU.search(path)
            if m:
                # The kernel reports kHz.
                rows.append((int(m.group(1)), parse_int(src.read_text(path), path) * 1000.0))
        for cpu, hz in sorted(rows):
            fam.add_metric([str(cpu)], hz)
        yield fam
