"""Memory total and available, plus CMA, from /proc/meminfo."""

from typing import Iterator

from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.procfs import available_bytes, parse_meminfo
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source


@register
class MemoryCollector(Collector):
    name = "memory"
    paths = ("/proc/meminfo",)

    def collect(self, src: Source) -> Iterator[Metric]:
        info = parse_meminfo(src.read_text("/proc/meminfo"))
        yield GaugeMetricFamily("board_memory_total_bytes",
                                "Memory the kernel manages (excludes MMZ and carveouts).",
                                value=info["MemTotal"])
        yield GaugeMetricFamily("board_memory_available_bytes",
                                "Memory available for new work without swapping.",
                                value=available_bytes(info))
        if "CmaTotal" in info:
            yield GaugeMetricFamily("board_memory_cma_total_bytes",
                                    "Contiguous memory allocator (CMA) size.",
                                    value=info["CmaTotal"])
            yield GaugeMetricFamily("board_memory_cma_free_bytes",
                                    "Free CMA memory.", value=info.get("CmaFree", 0))
