"""HiSilicon SVP accelerators (NNN/NPU, NNIE, IVE): utilisation and interrupt totals.

Each proc file belongs to one kernel module: a file that is absent, or vanishes before it
is read (module unloaded), is skipped; with none of them the collector is absent.
"""

from typing import Iterator, List

from boardfleet_agent.errors import NoData, ParseError
from boardfleet_agent.families import CounterMetricFamily, GaugeMetricFamily, Metric
from boardfleet_agent.parsers.hisi_accel import parse_accel
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

# accelerator label -> proc file
ACCELERATORS = (
    ("svp_nnn", "/proc/umap/svp_nnn"),
    ("svp_npu", "/proc/umap/svp_npu"),
    ("nnie", "/proc/umap/nnie"),
    ("ive", "/proc/umap/ive"),
)


@register
class HisiNpuCollector(Collector):
    name = "hisi_npu"
    paths = tuple(path for _, path in ACCELERATORS)

    def collect(self, src: Source) -> Iterator[Metric]:
        util = GaugeMetricFamily("board_accelerator_utilization_ratio",
                                 "Busy fraction of the accelerator core (0..1).",
                                 labels=["accelerator", "core"])
        irqs = CounterMetricFamily("board_accelerator_interrupts",
                                   "Interrupts the accelerator core raised since boot.",
                                   labels=["accelerator", "core"])
        errors: List[str] = []
        read = 0
        for acc, path in ACCELERATORS:
            try:
                cores = parse_accel(src.read_text(path), path, self.skips)
            except FileNotFoundError:
                continue
            except (OSError, ParseError) as e:
                errors.append("%s: %s" % (path, e))  # the other files are still exported
                continue
            read += 1
            for c in cores:
                if c.utilization is not None:
                    util.add_metric([acc, c.core], c.utilization)
                if c.interrupts is not None:
                    irqs.add_metric([acc, c.core], c.interrupts)
        if not read and not errors:
            raise NoData("no SVP, NNIE or IVE proc files")
        yield util
        yield irqs
        if errors:
            raise ParseError("; ".join(errors))
