"""DMA-BUF memory per exporter, from debugfs ``/sys/kernel/debug/dma_buf/bufinfo``.

On Snapdragon GKI kernels the exporter (``exp_name``) of heap buffers is the dma-heap
name (``qcom,system``, ``system``, ``qcom,secure-pixel``, ...), so this is the
successor of the ION heap totals. debugfs needs root; without it the file is absent and
the collector exports nothing.
"""

from typing import Dict, Iterator

from boardfleet_agent.errors import NoData
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.dmabuf import parse_bufinfo
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

BUFINFO = "/sys/kernel/debug/dma_buf/bufinfo"


@register
class DmaBufCollector(Collector):
    name = "dmabuf"
    paths = (BUFINFO,)
    # Megabytes on a busy board (50k buffers): parsed on a thread of its own every 5 s,
    # not every second on the scheduler with the quick collectors (issue 13).
    background = True
    default_interval = 5.0

    def collect(self, src: Source) -> Iterator[Metric]:
        try:
            text = src.read_text(BUFINFO)
        except FileNotFoundError:
            raise NoData("no %s (debugfs not mounted or no dma-buf)" % BUFINFO) from None
        info = parse_bufinfo(text, self.skips)
        size: Dict[str, int] = {}
        count: Dict[str, int] = {}
        for buf in info.buffers:
            size[buf.exp_name] = size.get(buf.exp_name, 0) + buf.size
            count[buf.exp_name] = count.get(buf.exp_name, 0) + 1
        b = GaugeMetricFamily("board_dmabuf_bytes",
                              "Bytes of live DMA-BUF buffers per exporter (exp_name).",
                              labels=["exporter"])
        n = GaugeMetricFamily("board_dmabuf_buffers",
                              "Live DMA-BUF buffers per exporter (exp_name).",
                              labels=["exporter"])
        for exporter in sorted(size):
            b.add_metric([exporter], size[exporter])
            n.add_metric([exporter], count[exporter])
        yield b
        yield n
