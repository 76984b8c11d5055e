"""Adreno GPU (kgsl): utilisation, frequency, model and per-process GPU memory.

Reads sysfs (``/sys/class/kgsl``), which needs no debugfs. Utilisation comes from
``gpubusy`` (busy ÷ total of the last window) when present, else
``gpu_busy_percentage``; frequency from ``devfreq/cur_freq``, else ``gpuclk`` (both Hz).
Per-process memory comes from ``kgsl/proc/<pid>/{kernel,user,ion}``; kernels without
those files fall back to debugfs ``kgsl/proc/<pid>/mem``, whose entry types gpumem,
usermem and ion are what kgsl sums into kernel, user and ion. A process that exits
between listing and reading is skipped; kgsl vanishing before or while it is read
(driver unloaded) makes the collector absent. Every file is read on its own: one that
refuses reads (permission) or holds nonsense costs only its figure and marks the run
failed, while ``gpu_model`` and the other readable figures are still served.
``process_names = false`` (agentless probes, whose batched read fetches no file per
process) leaves per-process memory out, and with it every read under a PID.
"""

from typing import Dict, Iterator, List, Tuple

from boardfleet_agent.errors import NoData, ParseError, SourceError
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.devfreq import parse_frequency
from boardfleet_agent.parsers.kgsl import (
    parse_busy_percentage,
    parse_bytes,
    parse_gpu_model,
    parse_gpubusy,
    parse_proc_mem,
)
from boardfleet_agent.parsers.lines import Skips
from boardfleet_agent.procs import process_name
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

GPU = "/sys/class/kgsl/kgsl-3d0"
PROC = "/sys/class/kgsl/kgsl/proc/[0-9]*"
DEBUG_PROC = "/sys/kernel/debug/kgsl/proc/[0-9]*"
KINDS = ("kernel", "user", "ion")
MEM_TYPE_KIND = {"gpumem": "kernel", "usermem": "user", "ion": "ion"}
LABELS = {"accelerator": "gpu", "core": "0"}


@register
class KgslCollector(Collector):
    name = "kgsl"
    paths = (GPU + "/gpubusy", GPU + "/gpu_busy_percentage", GPU + "/devfreq/cur_freq",
             GPU + "/gpuclk", GPU + "/gpu_model")
    process_paths = (*(PROC + "/" + k for k in KINDS), DEBUG_PROC + "/mem",
                     "/proc/[0-9]*/comm", "/proc/[0-9]*/stat")
    defaults = {"process_names": True}

    def collect(self, src: Source) -> Iterator[Metric]:
        per_process = bool(self.settings["process_names"])
        _require_kgsl(src, per_process)
        errors: List[str] = []  # each file is read on its own: one refusal costs its figure
        busy = _first(errors, src, (GPU + "/gpubusy", parse_gpubusy),
                      (GPU + "/gpu_busy_percentage", parse_busy_percentage))
        if busy is not None:
            fam = GaugeMetricFamily("board_accelerator_utilization_ratio",
                                    "Busy fraction of the accelerator core (0..1).",
                                    labels=list(LABELS))
            fam.add_metric(list(LABELS.values()), busy)
            yield fam
        freq = _first(errors, src, (GPU + "/devfreq/cur_freq", _hertz),
                      (GPU + "/gpuclk", _hertz))
        if freq is not None:
            fam = GaugeMetricFamily("board_accelerator_frequency_hertz",
                                    "Current clock of the accelerator core.",
                                    labels=list(LABELS))
            fam.add_metric(list(LABELS.values()), freq)
            yield fam
        model = _first(errors, src, (GPU + "/gpu_model", parse_gpu_model))
        if model is not None:
            fam = GaugeMetricFamily("board_accelerator_info",
                                    "Accelerator model; always 1.",
                                    labels=["accelerator", "model"])
            fam.add_metric(["gpu", model], 1.0)
            yield fam
        memory = self._process_memory(src, errors) if per_process else None
        _require_kgsl(src, per_process)  # unloaded while read: NoData, nothing is served
        if memory is not None:
            yield memory
        if errors:
            more = " (and %d more)" % (len(errors) - 3) if len(errors) > 3 else ""
            raise SourceError("; ".join(errors[:3]) + more)

    def _process_memory(self, src: Source, errors: List[str]) -> Metric:
        totals: Dict[Tuple[str, str], int] = {}
        pids = {d.rsplit("/", 1)[1] for d in src.glob(PROC) + src.glob(DEBUG_PROC)}
        for pid in sorted(pids):
            values = _sysfs_memory(src, PROC.replace("[0-9]*", pid), errors)
            if not values:
                try:
                    values = _debugfs_memory(src, DEBUG_PROC.replace("[0-9]*", pid),
                                             self.skips)
                except (OSError, ParseError) as e:
                    _note(errors, e)
                    continue
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


def _require_kgsl(src: Source, per_process: bool) -> None:
    if not src.exists(GPU) and not (per_process and (src.glob(PROC) or src.glob(DEBUG_PROC))):
        raise NoData("no kgsl GPU")


def _sysfs_memory(src: Source, proc_dir: str, errors: List[str]) -> Dict[str, int]:
    values = {}
    for kind in KINDS:
        path = "%s/%s" % (proc_dir, kind)
        try:
            values[kind] = parse_bytes(src.read_text(path), path)
        except FileNotFoundError:
            continue  # older kgsl has no "ion" file; or the process exited
        except (OSError, ParseError) as e:
            _note(errors, e, path)
    return values


def _debugfs_memory(src: Source, proc_dir: str, skips: Skips) -> Dict[str, int]:
    try:
        by_type = parse_proc_mem(src.read_text(proc_dir + "/mem"), skips)
    except FileNotFoundError:
        return {}
    return {kind: by_type.get(t, 0) for t, kind in MEM_TYPE_KIND.items()}


def _hertz(text: str) -> int:
    return parse_frequency(text, "kgsl frequency")


def _first(errors: List[str], src: Source, *choices):
    """Parse the first of (path, parser) whose file exists; None if none does.

    A file that exists but cannot be read or parsed goes to ``errors`` and the next
    choice is tried, so a refused ``gpubusy`` still leaves ``gpu_busy_percentage``.
    """
    for path, parser in choices:
        try:
            return parser(src.read_text(path))
        except FileNotFoundError:
            continue
        except (OSError, ParseError) as e:
            _note(errors, e, path)
    return None


def _note(errors: List[str], error: Exception, path: str = "") -> None:
    where = path + ": " if path and path not in str(error) else ""
    errors.append("%s%s: %s" % (where, type(error).__name__, error))
