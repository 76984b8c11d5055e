"""DMA-BUF bytes held per process, from ``/proc/<pid>/fd`` and ``/proc/<pid>/fdinfo``.

Platform-independent on purpose: dma-buf is the buffer-sharing mechanism of every
modern kernel (Snapdragon GKI heaps, Horizon X5 and SS928 6.x media buffers, V4L2 and
DRM on any board), and fdinfo reports it without debugfs or root-only files. On a board
where no process holds a dma-buf the collector exports nothing, like absent hardware.

It walks every process's fds, so it is sampled in the background (default every 15 s).
A dma-buf fd links to ``/dmabuf:<name>`` (``anon_inode:dmabuf`` on old kernels); its
fdinfo gives ``size:``, ``exp_name:`` and ``ino:``. Several fds of one buffer count once
per process (deduplicated by inode; without an ``ino:`` line, on kernels before ~5.12,
each fd counts). Sources that cannot read links (an agentless snapshot) instead keep
every fdinfo file that has an ``exp_name:`` line.
"""

import time
from typing import Dict, Iterator, List, Tuple

from boardfleet_agent.errors import NoData, SourceError
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.dmabuf import DmaBufFd, parse_dmabuf_fdinfo
from boardfleet_agent.procs import DMABUF_ION, process_name
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import VANISHED_ERRNOS, Source

PIDS = "/proc/[0-9]*"
OTHER = "other"


def can_readlink(src: Source) -> bool:
    """False for sources without symlinks (they raise SourceError for every path)."""
    try:
        src.readlink("/proc/self")
    except SourceError:
        return False
    except OSError:
        pass
    return True


def is_dmabuf_link(target: str) -> bool:
    return target.startswith("/dmabuf:") or target == "anon_inode:dmabuf"


@register
class DmaBufProcessCollector(Collector):
    name = "dmabuf_process"
    background = True
    default_interval = 15.0
    # Symlinks under fd/ are not files a batched read can fetch; a snapshot gets the
    # fdinfo files and the collector picks the dma-buf ones by their exp_name: line.
    paths = (PIDS + "/comm", PIDS + "/stat", PIDS + "/fdinfo/*")
    agentless = False  # every fd of every process: too heavy for a probed busybox board
    defaults = {"max_processes": 50}

    def collect(self, src: Source) -> Iterator[Metric]:
        started = time.monotonic()
        links = can_readlink(src)
        per_name: Dict[str, int] = {}
        own: Dict[int, int] = {}  # per PID, for model loads: own and ION-exported
        ion: Dict[int, int] = {}
        refused: List[str] = []  # fd directories, links or fdinfo that refused reads
        for pid_dir in src.glob(PIDS):
            pid = pid_dir.rsplit("/", 1)[1]
            fds = self._dmabuf_fds(src, pid_dir, links, refused)
            if not fds:
                continue
            name = process_name(src, pid)
            if name is None:
                continue  # exited mid-walk
            per_name[name] = per_name.get(name, 0) + _dedupe(fds)
            ion_fds = [f for f in fds if "ion" in f[1].exp_name.lower()]
            ion[int(pid)] = _dedupe(ion_fds)
            own[int(pid)] = _dedupe([f for f in fds if f not in ion_fds])
        failure = SourceError(
            "%d fd path(s) refused reads (the readable processes are served): %s"
            % (len(refused), "; ".join(refused[:3]))) if refused else None
        if failure is None:  # a process left out would read as a drop in its memory
            self.publish_pid_memory("dmabuf", own, started)
            self.publish_pid_memory(DMABUF_ION, ion, started)
        if not per_name:
            raise failure or NoData("no process holds a dma-buf")
        fam = GaugeMetricFamily(
            "board_dmabuf_process_bytes",
            "DMA-BUF bytes referenced by fds of processes of this name (each buffer once "
            "per process); names beyond the cap are summed as process=\"other\".",
            labels=["process"])
        for name, value in _capped(per_name, int(self.settings["max_processes"])):
            fam.add_metric([name], value)
        yield fam
        if failure is not None:
            raise failure

    def _dmabuf_fds(self, src: Source, pid_dir: str, links: bool,
                    refused: List[str]) -> List[Tuple[str, DmaBufFd]]:
        """(fd, fdinfo) of the process's dma-buf fds; what vanished mid-walk (the
        process, a closed fd) is skipped, what refused reads is added to ``refused``."""
        out: List[Tuple[str, DmaBufFd]] = []
        if links:
            candidates = []
            try:
                # Not glob: it would see an fd directory it may not list as empty.
                fds = src.listdir(pid_dir + "/fd")
            except OSError as e:
                if not isinstance(e, FileNotFoundError) and e.errno not in VANISHED_ERRNOS:
                    refused.append(_why(e, pid_dir + "/fd"))
                return out  # refused, or exited mid-walk
            for fd in fds:
                try:
                    target = src.readlink("%s/fd/%s" % (pid_dir, fd))
                except OSError as e:
                    if not isinstance(e, FileNotFoundError) and e.errno not in VANISHED_ERRNOS:
                        refused.append(_why(e, "%s/fd/%s" % (pid_dir, fd)))
                    continue
                if is_dmabuf_link(target):
                    candidates.append(fd)
        else:
            candidates = [p.rsplit("/", 1)[1] for p in src.glob(pid_dir + "/fdinfo/*")]
        for fd in candidates:
            path = "%s/fdinfo/%s" % (pid_dir, fd)
            try:
                text = src.read_text(path)
            except FileNotFoundError:
                continue
            except (OSError, SourceError) as e:
                refused.append(_why(e, path))
                continue
            info = parse_dmabuf_fdinfo(text)
            if info is not None:
                out.append((fd, info))
        return out


def _why(error: Exception, path: str) -> str:
    return "%s: %s" % (path, getattr(error, "strerror", None) or error)


def _dedupe(fds: List[Tuple[str, DmaBufFd]]) -> int:
    """Bytes of distinct buffers: fds sharing an inode are one buffer."""
    sizes: Dict[str, int] = {}
    for fd, info in fds:
        key = "ino:%d" % info.ino if info.ino is not None else "fd:" + fd
        sizes[key] = info.size
    return sum(sizes.values())


def _capped(per_name: Dict[str, int], cap: int) -> List[Tuple[str, int]]:
    """The ``cap`` largest names, the rest summed under ``other``; sorted by name."""
    cap = max(cap, 0)
    ranked = sorted(per_name.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[:cap])
    if len(ranked) > cap:
        kept[OTHER] = kept.get(OTHER, 0) + sum(v for _, v in ranked[cap:])
    return sorted(kept.items())
