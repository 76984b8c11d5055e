"""Current CPU frequency per core, from cpufreq sysfs.

A core whose cpufreq directory goes between listing and reading (hot-unplugged) is
skipped.
"""

import re
from typing import Iterator

from boardfleet_agent.errors import NoData
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.sysfs import parse_int
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

FREQ_GLOB = "/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq"
_CPU = re.compile(r"/cpu(\d+)/")


@register
class CpuFreqCollector(Collector):
    name = "cpufreq"
    paths = (FREQ_GLOB,)

    def collect(self, src: Source) -> Iterator[Metric]:
        rows = []
        for path in src.glob(FREQ_GLOB):
            m = _CPU.search(path)
            if not m:
                continue
            try:
                text = src.read_text(path)
            except FileNotFoundError:
                continue
            # The kernel reports kHz.
            rows.append((int(m.group(1)), parse_int(text, path) * 1000.0))
        if not rows:
            raise NoData("no cpufreq")
        fam = GaugeMetricFamily("board_cpu_frequency_hertz",
                                "Current CPU frequency.", labels=["cpu"])
        for cpu, hz in sorted(rows):
            fam.add_metric([str(cpu)], hz)
        yield fam
