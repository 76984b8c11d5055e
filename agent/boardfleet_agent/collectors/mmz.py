"""HiSilicon MMZ (media memory zone) usage from ``/proc/media-mem``.

Sampled in the background: reading the file takes the allocator's ``mmz_lock``, which
the media pipeline also needs, so it is not read on every scrape. Without the file (MMZ
module not loaded, or unloaded before it was read) the collector is absent; an owner PID
whose process exited is ``process="unknown"``. Owners are named from ``/proc/<pid>/comm``
(or ``stat``), read only for owner PIDs; ``process_names = false`` (agentless probes,
whose batched read fetches no file per process) leaves ``board_mmz_process_bytes`` out.
"""

import time
from typing import Dict, Iterator, List, Optional, Tuple

from boardfleet_agent.errors import NoData
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.mmz import (
    KB,
    MediaMem,
    MmzZone,
    largest_free_bytes,
    parse_media_mem,
    summary_consistent,
    used_bytes,
    zone_labels,
)
from boardfleet_agent.procs import process_name
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

MEDIA_MEM_PATHS = ("/proc/media-mem", "/proc/umap/media-mem")
# Owners of OT/SS928 blocks whose process is gone or unreadable: one bounded label value,
# never a PID.
UNKNOWN_PROCESS = "unknown"
# Allocation names per zone served one by one; the rest are summed as OTHER_NAME.
MAX_ALLOCATION_NAMES = 50
OTHER_NAME = "other"


@register
class MmzCollector(Collector):
    name = "mmz"
    background = True
    default_interval = 10.0
    paths = MEDIA_MEM_PATHS
    process_paths = ("/proc/[0-9]*/comm", "/proc/[0-9]*/stat")
    defaults = {"process_names": True}

    def collect(self, src: Source) -> Iterator[Metric]:
        started = time.monotonic()
        mm = parse_media_mem(read_media_mem(src), self.skips)
        if not mm.zones:
            raise NoData("no MMZ zones (MMZ module not loaded)")
        by_pid = pid_bytes(mm.zones)
        if by_pid is not None:
            self.publish_pid_memory("mmz", by_pid, started)
        yield from zone_families(mm.zones)
        owned = process_bytes(src, mm.zones) if self.settings["process_names"] else None
        if owned is not None:
            fam = GaugeMetricFamily(
                "board_mmz_process_bytes",
                "MMZ bytes in blocks a process owns; a shared block counts for each owner.",
                labels=["process"])
            for proc in sorted(owned):
                fam.add_metric([proc], owned[proc])
            yield fam
        if mm.summary is not None:  # None: cut short before it; the blocks are served
            yield from summary_families(mm)


def read_media_mem(src: Source) -> str:
    for path in MEDIA_MEM_PATHS:
        try:
            return src.read_text(path)
        except FileNotFoundError:
            continue
    raise NoData("no /proc/media-mem or /proc/umap/media-mem")


def zone_families(zones: List[MmzZone]) -> Iterator[Metric]:
    size = GaugeMetricFamily("board_mmz_size_bytes", "Size of the MMZ zone.", labels=["zone"])
    used = GaugeMetricFamily("board_mmz_used_bytes", "Sum of the zone's block lengths.",
                             labels=["zone"])
    free = GaugeMetricFamily("board_mmz_free_bytes", "Zone size minus used.", labels=["zone"])
    hole = GaugeMetricFamily("board_mmz_largest_free_block_bytes",
                             "Largest free hole in the zone (fragmentation).", labels=["zone"])
    alloc_bytes = GaugeMetricFamily("board_mmz_allocation_bytes",
                                    "Bytes held by the zone's blocks of this name.",
                                    labels=["zone", "name"])
    allocs = GaugeMetricFamily("board_mmz_allocations", "Number of the zone's blocks of this name.",
                               labels=["zone", "name"])
    for label, zone in zip(zone_labels(zones), zones):
        size.add_metric([label], zone.size_kb * KB)
        used.add_metric([label], used_bytes(zone))
        free.add_metric([label], zone.size_kb * KB - used_bytes(zone))
        hole.add_metric([label], largest_free_bytes(zone))
        by_name: Dict[str, Tuple[int, int]] = {}
        for b in zone.blocks:
            total, count = by_name.get(b.name, (0, 0))
            by_name[b.name] = (total + b.length_kb * KB, count + 1)
        by_name = top_names(by_name)
        for name in sorted(by_name):
            alloc_bytes.add_metric([label, name], by_name[name][0])
            allocs.add_metric([label, name], by_name[name][1])
    yield from (size, used, free, hole, alloc_bytes, allocs)


def top_names(by_name: Dict[str, Tuple[int, int]],
              limit: int = MAX_ALLOCATION_NAMES) -> Dict[str, Tuple[int, int]]:
    """The ``limit - 1`` names holding the most bytes, the rest added up as ``other``.

    Allocation names come from apps: without a cap one app could make a series per
    allocation.
    """
    if len(by_name) <= limit:
        return by_name
    keep = sorted(by_name, key=lambda n: (-by_name[n][0], n))[:limit - 1]
    out = {n: by_name[n] for n in keep if n != OTHER_NAME}
    rest = [v for n, v in by_name.items() if n not in out]
    out[OTHER_NAME] = (sum(v[0] for v in rest), sum(v[1] for v in rest))
    return out


def summary_families(mm: MediaMem) -> Iterator[Metric]:
    assert mm.summary is not None
    s = mm.summary
    yield GaugeMetricFamily("board_mmz_reported_total_bytes",
                            "MMZ total from the kernel's summary line (all zones).",
                            value=s.total_kb * KB)
    yield GaugeMetricFamily("board_mmz_reported_used_bytes",
                            "MMZ used from the kernel's summary line (all zones).",
                            value=s.used_kb * KB)
    yield GaugeMetricFamily("board_mmz_reported_remain_bytes",
                            "MMZ remain from the kernel's summary line (all zones).",
                            value=s.remain_kb * KB)
    yield GaugeMetricFamily("board_mmz_reported_consistent",
                            "1 if the zone and block lines add up to the summary line.",
                            value=1.0 if summary_consistent(mm) else 0.0)


def process_bytes(src: Source, zones: List[MmzZone]) -> Optional[Dict[str, int]]:
    """{process name: bytes} from OT/SS928 ``pid[...]`` owners; None on other SDKs."""
    if all(b.pids is None for z in zones for b in z.blocks):
        return None
    names: Dict[int, str] = {}
    out: Dict[str, int] = {}
    for z in zones:
        for b in z.blocks:
            owners = set()
            for pid in b.pids or ():
                if pid not in names:
                    names[pid] = process_name(src, pid) or UNKNOWN_PROCESS
                owners.add(names[pid])
            for proc in owners:
                out[proc] = out.get(proc, 0) + b.length_kb * KB
    return out


def pid_bytes(zones: List[MmzZone]) -> Optional[Dict[int, int]]:
    """{pid: bytes of the blocks it owns}; None on SDKs that name no owners."""
    blocks = [b for z in zones for b in z.blocks]
    if all(b.pids is None for b in blocks):
        return None
    out: Dict[int, int] = {}
    for b in blocks:
        for pid in set(b.pids or ()):
            out[pid] = out.get(pid, 0) + b.length_kb * KB
    return out
