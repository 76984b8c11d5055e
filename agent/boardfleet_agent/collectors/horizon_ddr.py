"""Horizon DDR bandwidth per AXI port, from the X5 AXI monitor or the ``hrut_ddr`` tool.

1. ``/sys/kernel/debug/axi_mon/statistics`` (X5), read only while ``axi_mon/enable`` is
   1: enabling the monitor perturbs ``hrut_ddr`` and other users of the counters. With
   ``own_axi_mon = true`` a local agent writes 1 to ``enable`` itself. When the monitor's
   files vanish before or while they are read (debugfs unmounted), hrut_ddr is used.
2. Otherwise ``hrut_ddr -t all -p <period_ms>``, run in the background and cut after two
   blocks; the last complete block is used. It prints MB/s, taken as 10^6 bytes/s.

``board_ddr_utilization_ratio`` = (read + write over all ports) / peak. The AXI monitor
reports the peak itself (``DDR Full bandwidth``); for ``hrut_ddr`` it comes from the
``peak_bytes_per_second`` setting, and while that is 0 (unknown) no peak and no ratio
are exported, only the per-port rates.
"""

import os
from typing import Iterator, List, Optional, Tuple

from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.axi_mon import parse_statistics
from boardfleet_agent.parsers.hrut_ddr import parse_last_block
from boardfleet_agent.parsers.sysfs import first_line
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import LocalSource, Source

AXI_MON = "/sys/kernel/debug/axi_mon"
MB = 1e6  # hrut_ddr's "MB/S": decimal megabytes assumed (the tool does not say)
BLOCK_LINES = 5  # Time, header, Read, Write, blank


@register
class HorizonDdrCollector(Collector):
    name = "horizon_ddr"
    background = True
    default_interval = 15.0
    paths = (AXI_MON + "/enable", AXI_MON + "/statistics")
    defaults = {
        "own_axi_mon": False,  # write 1 to axi_mon/enable (local agent only)
        "period_ms": 500,  # hrut_ddr -p: sampling period of one block
        "peak_bytes_per_second": 0.0,  # DDR peak for hrut_ddr's ratio; 0 = unknown
    }

    def collect(self, src: Source) -> Iterator[Metric]:
        text = self._axi_mon_statistics(src)
        if text is not None:
            stats = parse_statistics(text, self.skips)
            rows = [(p.name.lower(), float(p.read_bytes_per_second),
                     float(p.write_bytes_per_second)) for p in stats.ports]
            yield from _families(rows, float(stats.full_bandwidth), "axi_mon")
            return
        period = max(1, min(1000, int(self.settings["period_ms"])))
        out = src.run_tool("hrut_ddr", ["-t", "all", "-p", str(period)],
                           timeout=5.0 + 2 * period / 1000.0, max_lines=2 * BLOCK_LINES)
        block = parse_last_block(out)
        rows = [(name.lower(), block.read[name] * MB, block.write[name] * MB)
                for name in block.read if name.lower() != "sum"]
        yield from _families(rows, float(self.settings["peak_bytes_per_second"]), "hrut_ddr")

    def _axi_mon_statistics(self, src: Source) -> Optional[str]:
        """The AXI monitor's statistics while it runs; None if it is off or absent."""
        enable = AXI_MON + "/enable"
        if not (src.exists(AXI_MON + "/statistics") and src.exists(enable)):
            return None
        try:
            if self.settings["own_axi_mon"] and isinstance(src, LocalSource):
                _write_existing(src.host_path(enable), b"1\n")
            if first_line(src.read_text(enable)) != "1":
                return None
            return src.read_text(AXI_MON + "/statistics")
        except FileNotFoundError:
            return None  # went away meanwhile


def _write_existing(path: str, data: bytes) -> None:
    """Write to a sysfs/debugfs file; never create it (it may have just vanished)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _families(rows: List[Tuple[str, float, float]], peak: float,
              source: str) -> Iterator[Metric]:
    read = GaugeMetricFamily("board_ddr_read_bytes_per_second",
                             "DDR read bandwidth of an AXI port.", labels=["port"])
    write = GaugeMetricFamily("board_ddr_write_bytes_per_second",
                              "DDR write bandwidth of an AXI port.", labels=["port"])
    for port, r, w in sorted(rows):
        read.add_metric([port], r)
        write.add_metric([port], w)
    yield read
    yield write
    if peak > 0:
        peak_fam = GaugeMetricFamily("board_ddr_peak_bytes_per_second",
                                     "Theoretical DDR peak bandwidth.", labels=["controller"])
        peak_fam.add_metric(["ddr"], peak)
        yield peak_fam
        util = GaugeMetricFamily("board_ddr_utilization_ratio",
                                 "DDR traffic (read + write) / peak bandwidth.",
                                 labels=["controller", "source"])
        util.add_metric(["ddr", source], sum(r + w for _, r, w in rows) / peak)
        yield util

