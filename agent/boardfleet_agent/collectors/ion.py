"""ION heap capacity, usage, orphans and per-process bytes from ION debugfs.

Horizon boards (where HBMEM lives in ION) and pre-GKI Snapdragon kernels. Reads the
per-heap files ``/sys/kernel/debug/ion/heaps/<heap>``, or ``heaps/all_heap_info`` when
there are none: never both, or every heap would count twice. debugfs needs root.
A heap file that vanishes between listing and reading is skipped; ION debugfs vanishing
before or while it is read (debugfs unmounted, driver unloaded) makes the collector absent.
"""

import time
from typing import Dict, Iterator, List, Optional, Tuple

from boardfleet_agent.errors import NoData, ParseError
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.ion import IonHeap, parse_all_heap_info, parse_heap_file
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

ION_DIR = "/sys/kernel/debug/ion"
HEAPS_DIR = ION_DIR + "/heaps"
ALL_HEAP_INFO = HEAPS_DIR + "/all_heap_info"
OTHER = "other"
UNNAMED = "unknown"  # clients the kernel printed with a blank name


@register
class IonCollector(Collector):
    name = "ion"
    paths = (HEAPS_DIR + "/*",)
    # Megabytes on a busy board (50k buffers): parsed on a thread of its own every 5 s,
    # not every second on the scheduler with the quick collectors (issue 13).
    background = True
    default_interval = 5.0
    # Process series per heap; the smallest beyond this are summed into process="other".
    defaults = {"max_processes": 50}

    def collect(self, src: Source) -> Iterator[Metric]:
        started = time.monotonic()
        heaps, error = self._read_heaps(src)
        if error is None:  # a heap missing would make every PID's bytes too small
            by_pid: Dict[int, int] = {}
            for c in (c for h in heaps for c in h.clients):
                by_pid[c.pid] = by_pid.get(c.pid, 0) + c.size
            self.publish_pid_memory("ion", by_pid, started)
        size = GaugeMetricFamily("board_ion_heap_size_bytes",
                                 "ION heap capacity ('heap total size').", labels=["heap"])
        used = GaugeMetricFamily("board_ion_heap_used_bytes",
                                 "Bytes allocated from the ION heap.", labels=["heap"])
        orphaned = GaugeMetricFamily(
            "board_ion_heap_orphaned_bytes",
            "ION bytes in buffers no client holds a handle to (leak suspects).",
            labels=["heap"])
        process = GaugeMetricFamily("board_ion_process_bytes",
                                    "ION bytes held by processes of this name.",
                                    labels=["heap", "process"])
        for heap in heaps:
            if heap.capacity is not None:
                size.add_metric([heap.name], heap.capacity)
            if heap.used is not None:
                used.add_metric([heap.name], heap.used)
            if heap.orphaned is not None:
                orphaned.add_metric([heap.name], heap.orphaned)
            for proc, nbytes in per_process(heap, self.settings["max_processes"]):
                process.add_metric([heap.name, proc], nbytes)
        yield size
        yield used
        yield orphaned
        yield process
        if error is not None:
            raise error

    def _read_heaps(self, src: Source) -> Tuple[List[IonHeap], Optional[Exception]]:
        """Every heap that parsed, and the first error (the good heaps are still served)."""
        heaps: List[IonHeap] = []
        error: Optional[Exception] = None
        for path in src.glob(HEAPS_DIR + "/*"):
            if path == ALL_HEAP_INFO:
                continue
            try:
                heaps.append(parse_heap_file(_read(src, path), path.rsplit("/", 1)[1],
                                             self.skips))
            except FileNotFoundError:
                continue  # removed between listing and reading
            except (OSError, ParseError) as e:
                error = error or e
        if not heaps and error is None:  # no per-heap files (any more)
            heaps = parse_all_heap_info(_read(src, ALL_HEAP_INFO), self.skips)
        if not src.exists(HEAPS_DIR):
            raise NoData("ION debugfs went away while it was read")
        return heaps, error


def _read(src: Source, path: str) -> str:
    try:
        return src.read_text(path)
    except PermissionError:
        raise PermissionError("cannot read %s: permission denied (ION debugfs needs root)"
                              % path) from None
    except FileNotFoundError:
        if path != ALL_HEAP_INFO:
            raise
        if src.exists(ION_DIR):
            raise NoData("ION debugfs has no heap files") from None
        raise NoData("no ION debugfs at %s" % ION_DIR) from None


def per_process(heap: IonHeap, cap: int) -> List[Tuple[str, int]]:
    """Client bytes summed per process name, the ``cap`` largest kept, the rest in other."""
    sums: Dict[str, int] = {}
    for c in heap.clients:
        name = c.name or UNNAMED
        sums[name] = sums.get(name, 0) + c.size
    ranked = sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = [kv for kv in ranked if kv[0] != OTHER][:max(cap, 0)]
    names = {name for name, _ in kept}
    if len(kept) < len(ranked):
        kept.append((OTHER, sum(n for name, n in ranked if name not in names)))
    return sorted(kept)
