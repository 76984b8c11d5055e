"""Accelerator memory held by one process, read through the agent's :class:`Source`.

The sum of what each kind of accelerator memory attributes to the PID, where the board
has it (reusing the collectors' parsers):

* DMA-BUF: the process's ``/proc/<pid>/fd`` links to dma-bufs, sized by their fdinfo,
  each buffer (inode) once. Buffers exported by ION are left out when ION debugfs is
  readable, as they are already in its client rows.
* ION: client rows of ``/sys/kernel/debug/ion/heaps/*`` with this PID (Horizon HBMEM,
  pre-GKI Snapdragon; root only).
* MMZ: blocks of ``/proc/media-mem`` whose ``pid[...]`` owners include the PID
  (HiSilicon SS928/OT SDKs).
"""

from typing import Dict, List, Optional

from boardfleet_agent.errors import BoardfleetError
from boardfleet_agent.parsers.dmabuf import parse_dmabuf_fdinfo
from boardfleet_agent.parsers.ion import IonHeap, parse_all_heap_info, parse_heap_file
from boardfleet_agent.parsers.mmz import KB, parse_media_mem
from boardfleet_agent.source import Source

# The collectors' paths. Their modules are not imported here: importing one registers
# it, which would stop the registry from discovering the others.
HEAPS_DIR = "/sys/kernel/debug/ion/heaps"
ALL_HEAP_INFO = HEAPS_DIR + "/all_heap_info"
MEDIA_MEM_PATHS = ("/proc/media-mem", "/proc/umap/media-mem")
# A process with more fds than this is not scanned further (bounds the work per event).
MAX_FDS = 4096
_ERRORS = (OSError, BoardfleetError)


def accelerator_bytes(src: Source, pid: int) -> Optional[int]:
    """Accelerator bytes ``pid`` holds; None if the process or its memory is unknown."""
    if not src.exists("/proc/%d" % pid):
        return None
    ion = ion_bytes(src, pid)
    parts = [dmabuf_bytes(src, pid, skip_ion=ion is not None), ion, mmz_bytes(src, pid)]
    known = [p for p in parts if p is not None]
    return sum(known) if known else None


def dmabuf_bytes(src: Source, pid: int, skip_ion: bool = False) -> Optional[int]:
    """Bytes of distinct DMA-BUFs ``pid`` holds open; None if its fds are unreadable."""
    base = "/proc/%d" % pid
    if not src.exists(base + "/fd"):
        return None
    sizes: Dict[str, int] = {}
    for path in src.glob(base + "/fd/*")[:MAX_FDS]:
        fd = path.rsplit("/", 1)[1]
        try:
            target = src.readlink(path)
            if not (target.startswith("/dmabuf:") or target == "anon_inode:dmabuf"):
                continue
            info = parse_dmabuf_fdinfo(src.read_text(base + "/fdinfo/" + fd))
        except _ERRORS:
            continue  # closed meanwhile
        if info is not None and not (skip_ion and "ion" in info.exp_name.lower()):
            sizes["ino:%d" % info.ino if info.ino is not None else "fd:" + fd] = info.size
    return sum(sizes.values())


def ion_bytes(src: Source, pid: int) -> Optional[int]:
    """ION client bytes of ``pid`` over all heaps; None without readable ION debugfs."""
    heaps: List[IonHeap] = []
    try:
        files = [p for p in src.glob(HEAPS_DIR + "/*") if p != ALL_HEAP_INFO]
        for path in files:
            heaps.append(parse_heap_file(src.read_text(path), path.rsplit("/", 1)[1]))
        if not files:
            heaps = parse_all_heap_info(src.read_text(ALL_HEAP_INFO))
    except _ERRORS:
        return None
    return sum(c.size for h in heaps for c in h.clients if c.pid == pid)


def mmz_bytes(src: Source, pid: int) -> Optional[int]:
    """MMZ block bytes owned by ``pid``; None without media-mem or owner PIDs."""
    paths = [p for p in MEDIA_MEM_PATHS if src.exists(p)]
    try:
        zones = parse_media_mem(src.read_text(paths[0])).zones if paths else []
    except _ERRORS:
        return None
    blocks = [b for z in zones for b in z.blocks]
    if all(b.pids is None for b in blocks):
        return None
    return sum(b.length_kb * KB for b in blocks if b.pids and pid in b.pids)
