"""Adreno GPU (kgsl): utilisation, frequency, model and per-process GPU memory.

Reads sysfs only (``/sys/class/kgsl``), which needs no debugfs. Utilisation comes from
``gpubusy`` (busy ÷ total of the last window) when present, else
``gpu_busy_percentage``; frequency from ``devfreq/cur_freq``, else ``gpuclk`` (both Hz).
"""

from typing import Dict, Iterator, Tuple

from prometheus_client.core import GaugeMetricFamily, Metric

from boardfleet_agent.collectors.dmabuf_process import process_name
from boardfleet_agent.errors import NoData
from boardfleet_agent.parsers.devfreq import parse_frequency
from boardfleet_agent.parsers.kgsl import (
    parse_busy_percentage,
    parse_bytes,
    parse_gpu_model,
    parse_gpubusy,
)
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

GPU = "/sys/class/kgsl/kgsl-3d0"
PROC = "/sys/class/kgsl/kgsl/proc/[0-9]*"
KINDS = ("kernel", "user", "ion")
LABELS = {"accelerator": "gpu", "core": "0"}


@register
class KgslCollector(Collector):
    name = "kgsl"
    help = "Adreno GPU utilisation, frequency, model and per-process memory (kgsl sysfs)"
    platforms = frozenset({"snapdragon"})
    paths = (GPU + "/gpubusy", GPU + "/gpu_busy_percentage", GPU + "/devfreq/cur_freq",
             GPU + "/gpuclk", GPU + "/gpu_model", *(PROC + "/" + k for k in KINDS),
             "/proc/[0-9]*/comm", "/proc/[0-9]*/stat")

    def collect(self, src: Source) -> Iterator[Metric]:
        if not src.exists(GPU) and not src.glob(PROC):
            raise NoData("no kgsl GPU")
        busy = _first(src, (GPU + "/gpubusy", parse_gpubusy),
                      (GPU + "/gpu_busy_percentage", parse_busy_percentage))
        if busy is not None:
            fam = GaugeMetricFamily("board_accelerator_utilization_ratio",
                                    "Busy fraction of the accelerator core (0..1).",
                                    labels=list(LABELS))
            fam.add_metric(list(LABELS.values()), busy)
            yield fam
        freq = _first(src, (GPU + "/devfreq/cur_freq", _hertz), (GPU + "/gpuclk", _hertz))
        if freq is not None:
            fam = GaugeMetricFamily("board_accelerator_frequency_hertz",
                                    "Current clock of the accelerator core.",
                                    labels=list(LABELS))
            fam.add_metric(list(LABELS.values()), freq)
            yield fam
        model = _first(src, (GPU + "/gpu_model", parse_gpu_model))
        if model is not None:
            fam = GaugeMetricFamily("board_accelerator_info",
                                    "Accelerator model; always 1.",
                                    labels=["accelerator", "model"])
            fam.add_metric(["gpu", model], 1.0)
            yield fam
        yield self._process_memory(src)

    def _process_memory(self, src: Source) -> Metric:
        totals: Dict[Tuple[str, str], int] = {}
        for proc_dir in src.glob(PROC):
            pid = proc_dir.rsplit("/", 1)[1]
            values = {}
            for kind in KINDS:
                path = "%s/%s" % (proc_dir, kind)
                try:
                    values[kind] = parse_bytes(src.read_text(path), path)
                except FileNotFoundError:
                    continue  # older kgsl has no "ion" file; or the process exited
            name = process_name(src, pid)
            if name is None:
                continue  # exited mid-walk
            for kind, value in values.items():
                totals[(name, kind)] = totals.get((name, kind), 0) + value
        fam = GaugeMetricFamily("board_gpu_process_memory_bytes",
                                "GPU memory of processes of this name, by kgsl kind "
                                "(kernel, user, ion = imported dma-buf).",
                                labels=["process", "kind"])
        for (name, kind), value in sorted(totals.items()):
            fam.add_metric([name, kind], value)
        return fam


def _hertz(text: str) -> int:
    return parse_frequency(text, "kgsl frequency")


def _first(src: Source, *choices):
    """Parse the first of (path, parser) whose file exists; None if none does."""
    for path, parser in choices:
        try:
            text = src.read_text(path)
        except FileNotFoundError:
            continue
        return parser(text)
    return None
