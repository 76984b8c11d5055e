"""BPU utilisation and frequency from Horizon's ``/sys/devices/system/bpu``.

``ratio`` is the kernel's smoothed busy percentage (a decaying window, not a counter).
A core that reads ``core not inited!`` is skipped; a core whose ``power_enable`` is 0 is
powered off, so its devfreq ``cur_freq`` is stale and not exported.
"""

from typing import Iterator, List

from prometheus_client.core import GaugeMetricFamily, Metric

from boardfleet_agent.errors import NoData
from boardfleet_agent.parsers.bpu import parse_ratio
from boardfleet_agent.parsers.sysfs import parse_int
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

BPU = "/sys/devices/system/bpu"
CORES = BPU + "/bpu[0-9]*"


@register
class BpuCollector(Collector):
    name = "bpu"
    help = "BPU utilisation and frequency per core (/sys/devices/system/bpu)"
    platforms = frozenset(("horizon",))
    paths = (BPU + "/ratio", BPU + "/core_num", CORES + "/ratio", CORES + "/power_enable",
             CORES + "/devfreq/*/cur_freq")

    def collect(self, src: Source) -> Iterator[Metric]:
        if not src.exists(BPU):
            raise NoData("no BPU driver at %s" % BPU)
        util = GaugeMetricFamily("board_accelerator_utilization_ratio",
                                 "Accelerator busy ratio (kernel smoothed window).",
                                 labels=["accelerator", "core"])
        freq = GaugeMetricFamily("board_accelerator_frequency_hertz",
                                 "Accelerator clock frequency.", labels=["accelerator", "core"])
        whole = parse_ratio(src.read_text(BPU + "/ratio"), BPU + "/ratio")
        if whole is not None:
            util.add_metric(["bpu", "all"], whole)
        for core in _cores(src):
            base = "%s/bpu%d" % (BPU, core)
            ratio = parse_ratio(src.read_text(base + "/ratio"), base + "/ratio")
            if ratio is None:
                continue
            util.add_metric(["bpu", str(core)], ratio)
            if not _powered(src, base):
                continue
            for path in src.glob(base + "/devfreq/*/cur_freq")[:1]:
                freq.add_metric(["bpu", str(core)], parse_int(src.read_text(path), path))
        yield util
        yield freq


def _cores(src: Source) -> List[int]:
    """Core numbers 0..core_num-1 that have a directory."""
    count = parse_int(src.read_text(BPU + "/core_num"), BPU + "/core_num")
    return [n for n in range(min(count, 64)) if src.exists("%s/bpu%d" % (BPU, n))]


def _powered(src: Source, base: str) -> bool:
    """``power_enable`` is 1, or absent (drivers without power gating)."""
    path = base + "/power_enable"
    if not src.exists(path):
        return True
    return parse_int(src.read_text(path), path) != 0
