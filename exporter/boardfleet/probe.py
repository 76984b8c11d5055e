"""Agentless probes: one batched remote read, then the agent's own collectors.

For a board, the probe gathers the ``paths`` of every collector of its platform, reads
them all with ONE ``batch_script`` over the board's transport, and runs the agent's
:class:`~boardfleet_agent.runner.ScrapeRunner` over the resulting ``SnapshotSource``.
Vendor tools (``hiddrs``, ``hrut_ddr``) and ``statvfs`` are not available through a
snapshot, so DDR-tool and filesystem metrics come only from the on-board agent.
"""

import logging
import secrets
import threading
import time
from typing import Dict, Iterable, List, Sequence, Tuple, Type

from boardfleet.inventory import Board
from boardfleet.transports import TransportError
from boardfleet.transports.pool import SessionPool
from boardfleet_agent.exposition import render as render_families
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.platform import detect
from boardfleet_agent.registry import Collector, all_collectors, collectors_for
from boardfleet_agent.runner import ScrapeRunner
from boardfleet_agent.source import SnapshotSource, batch_script, parse_batch

log = logging.getLogger("boardfleet.probe")

# Extra files read when the platform is still unknown, so detect() can decide.
DETECT_PATTERNS = ("/proc/media-mem", "/proc/umap/*", "/sys/devices/system/bpu/*",
                   "/sys/class/kgsl/kgsl/*")


def probe_families(success: bool, duration: float) -> List[Metric]:
    ok = GaugeMetricFamily("board_probe_success",
                           "1 if the agentless probe read the board, 0 if it failed.")
    ok.add_metric([], 1.0 if success else 0.0)
    took = GaugeMetricFamily("board_probe_duration_seconds",
                             "How long the agentless probe took.")
    took.add_metric([], duration)
    return [ok, took]


def render(families: List[Metric], success: bool, duration: float) -> bytes:
    """A probe's page: the board's families, then whether and how long the probe read it."""
    return render_families(families + probe_families(success, duration))


def probed_collectors(platform: str) -> List[Type[Collector]]:
    """The platform's collectors that are light enough to read over a probe."""
    return [c for c in collectors_for(platform, {}) if c.agentless]


# Settings of every probed collector: no file per process in a busybox board's batched
# read (a collector reads only its ``paths`` then; tests/agentless/test_read_plan.py).
PROBE_SETTINGS = {"process_names": False}


def probe_collector(cls: Type[Collector], platform: str) -> Collector:
    """A collector as a probe runs it."""
    return cls(PROBE_SETTINGS, platform=platform)


def with_prefix(patterns: Iterable[str], sysroot: str) -> List[str]:
    base = sysroot.rstrip("/")
    return sorted({base + p for p in patterns})


class Prober:
    """Probes boards through a session pool; remembers each board's detected platform."""

    def __init__(self, pool: SessionPool) -> None:
        self.pool = pool
        self._platforms: Dict[str, str] = {}
        self._lock = threading.Lock()

    def forget(self, name: str) -> None:
        with self._lock:
            self._platforms.pop(name, None)
        self.pool.forget(name)

    def plan(self, board: Board) -> Tuple[str | None, Sequence[Type[Collector]], List[str]]:
        """(platform or None if unknown, collector classes, board-side glob patterns)."""
        platform: str | None = board.platform if board.platform != "auto" else None
        if platform is None:
            with self._lock:
                platform = self._platforms.get(board.name)
        if platform is None:
            classes: Sequence[Type[Collector]] = [
                c for c in all_collectors().values() if c.agentless]
            patterns = [*DETECT_PATTERNS]
        else:
            classes = probed_collectors(platform)
            patterns = []
        for cls in classes:
            patterns.extend(cls.paths)
        return platform, classes, with_prefix(patterns, board.sysroot)

    def snapshot(self, board: Board, patterns: List[str], deadline: float) -> SnapshotSource:
        nonce = secrets.token_hex(8)
        out = self.pool.run(board, batch_script(patterns, nonce),
                            deadline - time.monotonic())
        if "\n@@BF%s:END\n" % nonce not in out:
            raise TransportError("%s: batched read ended early" % board.name)
        files = parse_batch(out, nonce)
        base = board.sysroot.rstrip("/")
        if base:
            files = {p[len(base):]: t for p, t in files.items() if p.startswith(base + "/")}
        return SnapshotSource(files)

    def probe(self, board: Board, deadline: float) -> bytes:
        """The board's exposition text; never raises, failures give success 0."""
        start = time.monotonic()
        try:
            platform, _, patterns = self.plan(board)
            snap = self.snapshot(board, patterns, deadline)
            if platform is None:
                platform = detect(snap)
                with self._lock:
                    self._platforms[board.name] = platform
            collectors = [probe_collector(cls, platform) for cls in probed_collectors(platform)]
            families = list(ScrapeRunner(collectors, snap, background=False).collect())
            return render(families, True, time.monotonic() - start)
        except TransportError as e:
            log.info("probe failed: %s", e)
        except Exception:
            log.exception("probe of %s failed", board.name)
        return render([], False, time.monotonic() - start)
