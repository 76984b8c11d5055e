"""CPU seconds per core and mode, and the boot time, from /proc/stat."""

from typing import Iterator

from boardfleet_agent.families import CounterMetricFamily, GaugeMetricFamily, Metric
from boardfleet_agent.parsers.procfs import parse_stat
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source


@register
class CpuCollector(Collector):
    name = "cpu"
    paths = ("/proc/stat",)

    def collect(self, src: Source) -> Iterator[Metric]:
        stat = parse_stat(src.read_text("/proc/stat"))
        secs = CounterMetricFamily(
            "board_cpu_seconds_total", "Seconds the CPUs spent in each mode.",
            labels=["cpu", "mode"])
        for cpu in sorted(stat.per_cpu, key=int):
            for mode, value in stat.per_cpu[cpu].items():
                secs.add_metric([cpu, mode], value)
        yield secs
        if stat.boot_time is not None:
            yield GaugeMetricFamily("board_boot_time_seconds",
                                    "Unix time the board booted.", value=stat.boot_time)
