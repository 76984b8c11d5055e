"""Snapdragon DDR frequency and its ratio to the highest DDR frequency.

These are clock figures, never traffic: ``board_ddr_frequency_ratio`` says how far DCVS
has raised DDR towards its top level, and the fleet's measured-bandwidth figure
``board_ddr_utilization_ratio`` is not exported on Snapdragon (issue 14). Qualcomm
kernels do measure DDR traffic (the bwmon hardware behind the ``bw_hwmon`` devfreq
governor on msm kernels and ``qcom-bwmon`` on Qualcomm Linux / GKI vendor modules), but
publish the measurement only in ftrace events (``bw_hwmon_meas``); their sysfs files are
tunables (``bw_hwmon/io_percent``, ``mbps_zones`` ...) and the resulting vote, and the
upstream ``icc-bwmon`` driver exposes nothing readable (docs/metrics.md).

GKI kernels (5.10+): ``/sys/devices/system/cpu/bus_dcvs/DDR/{cur_freq,
available_frequencies}`` in kHz, ``source="bus_dcvs_freq"``. Older msm kernels: the
devfreq node ``*cpu-llcc-ddr-bw*`` (else ``*cpubw*``), whose ``cur_freq`` is a bw_hwmon
vote in MB/s, so it yields only the ratio (``source="devfreq_freq"``), no frequency.
Files that vanish before or while they are read (driver unloaded) count as absent.
"""

from typing import Callable, Iterator, List, Optional, TypeVar

from boardfleet_agent.errors import NoData
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.devfreq import (
    frequency_ratio,
    parse_available_frequencies,
    parse_frequency,
)
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

T = TypeVar("T")

BUS_DCVS = "/sys/devices/system/cpu/bus_dcvs/DDR"
DEVFREQ_NODES = ("/sys/class/devfreq/*cpu-llcc-ddr-bw*", "/sys/class/devfreq/*cpubw*")
CONTROLLER = "DDR"
RATIO = "board_ddr_frequency_ratio"
RATIO_HELP = ("DDR current frequency (or bandwidth vote) ÷ the highest available one; "
              "a clock ratio, not measured traffic.")


@register
class QcomDdrCollector(Collector):
    name = "qcom_ddr"
    paths = (BUS_DCVS + "/cur_freq", BUS_DCVS + "/available_frequencies",
             *(n + "/" + f for n in DEVFREQ_NODES
               for f in ("cur_freq", "available_frequencies")))

    def collect(self, src: Source) -> Iterator[Metric]:
        khz = _frequency(src, BUS_DCVS)
        if khz is not None:
            fam = GaugeMetricFamily("board_ddr_frequency_hertz",
                                    "Current DDR frequency (DCVS vote).",
                                    labels=["controller"])
            fam.add_metric([CONTROLLER], khz * 1000.0)
            yield fam
            available = _available(src, BUS_DCVS)
            if not src.exists(BUS_DCVS):  # NoData: what was yielded is not served either
                raise NoData("bus_dcvs/DDR went away while it was read")
            if available is not None:
                yield _ratio("bus_dcvs_freq", frequency_ratio(khz, available))
            return
        for node in (n for pattern in DEVFREQ_NODES for n in src.glob(pattern)):
            vote = _frequency(src, node)
            if vote is None:
                continue
            available = _available(src, node)
            if available is None:
                raise NoData("%s has no available_frequencies" % node)
            yield _ratio("devfreq_freq", frequency_ratio(vote, available))
            return
        raise NoData("no bus_dcvs/DDR and no DDR bandwidth devfreq node")


def _frequency(src: Source, node: str) -> Optional[int]:
    """The node's ``cur_freq``; None if it has none."""
    return _optional(src, node + "/cur_freq", parse_frequency)


def _available(src: Source, node: str) -> Optional[List[int]]:
    return _optional(src, node + "/available_frequencies", parse_available_frequencies)


def _optional(src: Source, path: str, parse: Callable[[str, str], T]) -> Optional[T]:
    """``parse(text, path)`` of the file; None if it does not exist."""
    try:
        text = src.read_text(path)
    except FileNotFoundError:
        return None
    return parse(text, path)


def _ratio(source: str, value: float) -> Metric:
    fam = GaugeMetricFamily(RATIO, RATIO_HELP,
                            labels=["controller", "source"])
    fam.add_metric([CONTROLLER, source], value)
    return fam
