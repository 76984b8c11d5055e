"""Process helpers shared by the collectors and the push pipeline.

:func:`process_name` names a PID as the per-process collectors label it.

:class:`PidMemory` holds the accelerator memory per process as the background
collectors last sampled it. Model-load profiling needs the accelerator bytes one PID
holds before and after a load. Reading them on the StatsD thread would re-read
``/proc/media-mem`` (under the MMZ allocator lock) or megabytes of ION debugfs for every
event, so the collectors that already read these files publish what each PID holds into
a :class:`PidMemory` after each run, and model loads only look it up:

* ``mmz``: blocks of ``/proc/media-mem`` whose ``pid[...]`` owners include the PID
  (HiSilicon SS928/OT SDKs; other SDKs name no owners and publish nothing);
* ``ion``: client rows of ION debugfs with the PID (Horizon HBMEM, pre-GKI Snapdragon);
* ``dmabuf``: distinct dma-bufs the PID holds open (``dmabuf_process``), with the
  buffers ION exported apart (``dmabuf_ion``), which count only where ION is not
  readable, as they are already in its client rows.

Each kind carries the monotonic time its run started, so a reader can ask for memory
sampled after a moment (the end of a load).
"""

import threading
from typing import Callable, Dict, List, Optional, Tuple, Union

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.procfs import parse_pid_stat
from boardfleet_agent.parsers.sysfs import first_line
from boardfleet_agent.source import Source

DMABUF_ION = "dmabuf_ion"
ByPid = Dict[int, int]


def process_name(src: Source, pid: Union[int, str]) -> Optional[str]:
    """The process's ``comm`` (``/proc/<pid>/comm``, else ``stat``); None if it is gone."""
    try:
        name = first_line(src.read_text("/proc/%s/comm" % pid))
        if name:
            return name
    except OSError:
        pass
    try:
        return parse_pid_stat(src.read_text("/proc/%s/stat" % pid)).comm or None
    except (OSError, ParseError):
        return None


class PidMemory:
    """The latest per-PID accelerator bytes of each kind, and who wants to hear of them."""

    def __init__(self) -> None:
        self._kinds: Dict[str, Tuple[float, ByPid]] = {}
        self._lock = threading.Lock()
        self._listeners: List[Callable[[], None]] = []

    def publish(self, kind: str, by_pid: ByPid, started: float) -> None:
        """Replace ``kind``'s figures with those of a run started at ``started``."""
        with self._lock:
            self._kinds[kind] = (started, dict(by_pid))
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def listen(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (on the publishing collector's thread) after each publish."""
        with self._lock:
            self._listeners.append(listener)

    def bytes_of(self, pid: int, since: Optional[float] = None) -> Optional[int]:
        """Bytes ``pid`` holds over every published kind; None if no kind was published
        or, given ``since`` (monotonic), one was not sampled again since then."""
        with self._lock:
            kinds = dict(self._kinds)
        if not kinds or (since is not None and any(t < since for t, _ in kinds.values())):
            return None
        if "ion" in kinds:
            kinds.pop(DMABUF_ION, None)
        return sum(by_pid.get(pid, 0) for _, by_pid in kinds.values())

