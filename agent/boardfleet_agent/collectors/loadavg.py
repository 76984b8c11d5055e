"""Load averages from /proc/loadavg."""

from typing import Iterator

from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.procfs import parse_loadavg
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source


@register
class LoadavgCollector(Collector):
    name = "loadavg"
    paths = ("/proc/loadavg",)

    def collect(self, src: Source) -> Iterator[Metric]:
        load = parse_loadavg(src.read_text("/proc/loadavg"))
        for minutes, value in zip((1, 5, 15), load):
            yield GaugeMetricFamily("board_load%d" % minutes,
                                    "%d-minute load average." % minutes, value=value)
