"""Accelerator memory held by one process, read through the agent's :class:`Source`.

DMA-BUF: the process's ``/proc/<pid>/fd`` links to ``/dmabuf:`` (or
``anon_inode:dmabuf``) and the ``size:`` / ``ino:`` lines of the matching
``/proc/<pid>/fdinfo`` entry; a buffer open through several fds counts once. On
Horizon (HBMEM via ION/DMA-BUF), Snapdragon and recent HiSilicon kernels this is where
accelerator buffers show up.
"""

from typing import Dict, Optional

from boardfleet_agent.errors import BoardfleetError
from boardfleet_agent.source import Source

# A process with more fds than this is not scanned further (bounds the work per event).
MAX_FDS = 4096


def parse_fdinfo(text: str) -> Dict[str, str]:
    """``key:<tab>value`` lines of an fdinfo file."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def dmabuf_bytes(src: Source, pid: int) -> Optional[int]:
    """Bytes of distinct DMA-BUFs ``pid`` holds open; None if the process is unreadable."""
    base = "/proc/%d" % pid
    if not src.exists(base + "/fd"):
        return None
    sizes: Dict[str, int] = {}
    for path in src.glob(base + "/fd/*")[:MAX_FDS]:
        try:
            if "dmabuf" not in src.readlink(path):
                continue
            info = parse_fdinfo(src.read_text(base + "/fdinfo/" + path.rsplit("/", 1)[1]))
            size = int(info["size"])
        except (OSError, BoardfleetError, KeyError, ValueError):
            continue  # the fd closed meanwhile, or the kernel prints no size
        sizes[info.get("ino") or path] = max(0, size)
    return sum(sizes.values())
