"""HiSilicon video buffer (VB) pools from ``/proc/umap/vb``.

Without the file (MPP not loaded, or unloaded before it was read) the collector is absent.
"""

from typing import Iterator

from boardfleet_agent.errors import NoData
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.hisi_vb import parse_vb
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

VB_PATH = "/proc/umap/vb"


@register
class HisiVbCollector(Collector):
    name = "hisi_vb"
    paths = (VB_PATH,)

    def collect(self, src: Source) -> Iterator[Metric]:
        try:
            text = src.read_text(VB_PATH)
        except FileNotFoundError:
            raise NoData("no %s (MPP not loaded)" % VB_PATH) from None
        pools = parse_vb(text, self.skips)
        labels = ["pool", "common"]
        blocks = GaugeMetricFamily("board_vb_pool_blocks", "Blocks in the VB pool.",
                                   labels=labels)
        free = GaugeMetricFamily("board_vb_pool_free_blocks", "Free blocks in the VB pool.",
                                 labels=labels)
        min_free = GaugeMetricFamily(
            "board_vb_pool_min_free_blocks",
            "Fewest free blocks the pool has had; 0 means frames may have been dropped.",
            labels=labels)
        size = GaugeMetricFamily("board_vb_pool_block_bytes", "Block size of the VB pool.",
                                 labels=labels)
        for p in pools:
            lv = [str(p.pool), "true" if p.common else "false"]
            blocks.add_metric(lv, p.blocks)
            free.add_metric(lv, p.free_blocks)
            min_free.add_metric(lv, p.min_free_blocks)
            size.add_metric(lv, p.block_bytes)
        yield from (blocks, free, min_free, size)
