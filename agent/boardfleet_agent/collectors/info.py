"""``board_info``: platform, SoC, board model, kernel and agent version."""

from typing import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from boardfleet_agent import __version__
from boardfleet_agent.platform import DT_COMPATIBLE, DT_MODEL, HISI_VERSION_FILES, describe
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source


@register
class InfoCollector(Collector):
    name = "info"
    help = "board_info metadata (platform, soc, model, kernel, agent version)"
    # The HiSilicon MPP version lines name the SoC of boards without a device tree.
    paths = (*DT_MODEL, *DT_COMPATIBLE, *HISI_VERSION_FILES, "/proc/sys/kernel/osrelease",
             "/proc/version")

    def collect(self, src: Source) -> Iterator[Metric]:
        d = describe(src)
        fam = GaugeMetricFamily(
            "board_info", "Board metadata; always 1.",
            labels=["platform", "soc", "model", "kernel", "agent_version"])
        fam.add_metric([self.platform, d["soc"], d["model"], d["kernel"], __version__], 1.0)
        yield fam
