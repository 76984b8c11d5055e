"""BPU utilisation and frequency from Horizon's ``/sys/devices/system/bpu``.

``ratio`` is the kernel's smoothed busy percentage (a decaying window, not a counter).
A core that reads ``core not inited!`` is skipped; a core whose ``power_enable`` is 0 is
powered off, so its devfreq ``cur_freq`` is stale and not exported. A core directory that
vanishes between listing and reading is skipped; the driver's directory vanishing, before
or while it is read (module unloaded), makes the collector absent.
"""

from typing import Iterator, Optional, Tuple

from boardfleet_agent.errors import NoData
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.bpu import parse_ratio
from boardfleet_agent.parsers.sysfs import parse_int
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

BPU = "/sys/devices/system/bpu"
CORES = BPU + "/bpu[0-9]*"
MAX_CORES = 64


@register
class BpuCollector(Collector):
    name = "bpu"
    paths = (BPU + "/ratio", BPU + "/core_num", CORES + "/ratio", CORES + "/power_enable",
             CORES + "/devfreq/*/cur_freq")

    def collect(self, src: Source) -> Iterator[Metric]:
        _require_driver(src)
        util = GaugeMetricFamily("board_accelerator_utilization_ratio",
                                 "Accelerator busy ratio (kernel smoothed window).",
                                 labels=["accelerator", "core"])
        freq = GaugeMetricFamily("board_accelerator_frequency_hertz",
                                 "Accelerator clock frequency.", labels=["accelerator", "core"])
        try:
            whole = parse_ratio(src.read_text(BPU + "/ratio"), BPU + "/ratio")
            count = parse_int(src.read_text(BPU + "/core_num"), BPU + "/core_num")
        except FileNotFoundError:
            _require_driver(src)  # unloaded meanwhile: absent, not failed
            raise
        if whole is not None:
            util.add_metric(["bpu", "all"], whole)
        for core in range(min(count, MAX_CORES)):
            try:
                reading = _core(src, "%s/bpu%d" % (BPU, core))
            except FileNotFoundError:
                continue  # no such core, or it went between listing and reading
            if reading is None:
                continue
            ratio, hertz = reading
            util.add_metric(["bpu", str(core)], ratio)
            if hertz is not None:
                freq.add_metric(["bpu", str(core)], hertz)
        _require_driver(src)  # unloaded while read: what was read is not served
        yield util
        yield freq


def _require_driver(src: Source) -> None:
    if not src.exists(BPU):
        raise NoData("no BPU driver at %s" % BPU)


def _core(src: Source, base: str) -> Optional[Tuple[float, Optional[int]]]:
    """(busy ratio, Hz or None when powered off) of one core; None if it is not inited."""
    ratio = parse_ratio(src.read_text(base + "/ratio"), base + "/ratio")
    if ratio is None:
        return None
    if not _powered(src, base):
        return ratio, None
    paths = src.glob(base + "/devfreq/*/cur_freq")
    return ratio, (parse_int(src.read_text(paths[0]), paths[0]) if paths else None)


def _powered(src: Source, base: str) -> bool:
    """``power_enable`` is 1, or absent (drivers without power gating)."""
    path = base + "/power_enable"
    try:
        return parse_int(src.read_text(path), path) != 0
    except FileNotFoundError:
        return True
