"""Latency from the logs of apps that cannot be changed: follow files, match patterns.

A :class:`FileFollower` reads what was appended to a file since the last poll and
survives rotation (the path now names a new file: the old one is read to its end, then
the new one from its start) and truncation (the file shrank: read again from 0).
A :class:`LogPattern` turns a line into values through regexes with named groups
``latency_ms``, ``fps`` and ``frames``; the built-in ``hrt_model_exec`` pattern reads
Horizon ``hrt_model_exec perf`` output.
"""

import math
import os
import re
import stat
import threading
from typing import IO, Dict, Iterator, List, Optional, Sequence, Tuple

from boardfleet_agent.families import CounterMetricFamily, GaugeMetricFamily, Metric
from boardfleet_agent.log import log
from boardfleet_agent.threads import LoopThread

GROUPS = ("latency_ms", "fps", "frames")
MAX_READ = 1 << 20    # bytes read from one file per poll
MAX_LINE = 64 << 10   # a longer line is dropped rather than buffered
MAX_LAG = 64 * MAX_READ  # unread bytes past this are skipped: the tail catches up

BUILTIN = {
    "hrt_model_exec": (
        # Frame count: 200,  Thread Average: 0.721070 ms,  thread max latency: ..., FPS: 2720.08
        r"Frame count:\s*(?P<frames>\d+),\s*Thread Average:\s*(?P<latency_ms>[0-9.]+)\s*ms"
        r".*FPS:\s*(?P<fps>[0-9.]+)",
        # Final "Perf result:" block.
        r"^\s*Average\s+latency\s+is:\s*(?P<latency_ms>[0-9.]+)\s*ms",
        r"^\s*Frame\s+rate\s+is:\s*(?P<fps>[0-9.]+)\s*FPS",
    ),
}


class LogPattern:
    """Regexes whose named groups give ``latency_ms``, ``fps`` and/or ``frames``."""

    def __init__(self, regexes: Sequence[str]) -> None:
        self.regexes = [re.compile(r) for r in regexes]
        for rx in self.regexes:
            if not set(rx.groupindex) & set(GROUPS):
                raise ValueError("pattern %r has none of the named groups %s"
                                 % (rx.pattern, ", ".join(GROUPS)))

    @classmethod
    def named_or_regex(cls, spec: str) -> "LogPattern":
        """A built-in pattern by name, or one user regex."""
        return cls(BUILTIN.get(spec, (spec,)))

    def extract(self, line: str) -> Dict[str, float]:
        """Values found in ``line`` (finite, non-negative); empty if nothing matched."""
        for rx in self.regexes:
            m = rx.search(line)
            if m is None:
                continue
            out = {}
            for group in GROUPS:
                text = m.groupdict().get(group)
                try:
                    value = float(text) if text is not None else math.nan
                except ValueError:
                    continue
                if math.isfinite(value) and value >= 0:
                    out[group] = value
            if out:
                return out
        return {}


class FileFollower:
    """Lines appended to ``path``, across rotation and truncation (poll-based)."""

    def __init__(self, path: str, from_start: bool = False) -> None:
        self.path = path
        self._from_start = from_start
        self._f: Optional[IO[bytes]] = None
        self._ino: Tuple[int, int] = (0, 0)
        self._buf = b""
        self._skipping = False  # inside a line longer than MAX_LINE: drop to its end
        self._refused = False  # the path is not a regular file (logged once)
        self.lag = 0  # bytes written but not read yet, after the last poll
        self.skipped = 0  # bytes jumped over to catch up with a writer too fast to follow

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def poll(self) -> List[str]:
        """Complete lines added since the last poll (at most :data:`MAX_READ` bytes)."""
        if self._f is None and not self._open():
            return []
        assert self._f is not None
        self._catch_up(self._f)
        data = self._f.read(MAX_READ)
        self.lag = max(0, os.fstat(self._f.fileno()).st_size - self._f.tell())
        if not data:
            try:
                st = os.stat(self.path)
            except OSError:
                return []  # rotated away, the new file is not there yet
            if (st.st_dev, st.st_ino) != self._ino:
                self.close()
                self._from_start = True
                self._buf = b""
                return self.poll()
            if st.st_size < self._f.tell():
                self._f.seek(0)
                self._buf = b""
            return []
        return self._lines(data)

    def _catch_up(self, f: IO[bytes]) -> None:
        """Jump to the end when more than MAX_LAG bytes wait: recent lines matter most."""
        behind = os.fstat(f.fileno()).st_size - f.tell()
        if behind > MAX_LAG:
            f.seek(0, os.SEEK_END)
            self.skipped += behind
            self._buf = b""
            self._skipping = True  # the jump lands inside a line
            log.warning("logtail %s: %d bytes behind the writer, skipped to the end",
                        self.path, behind)

    def _open(self) -> bool:
        try:
            # O_NONBLOCK: opening a FIFO would wait for a writer, freezing every file.
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            self._from_start = True  # when it appears, all of it is new
            return False
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            if not self._refused:
                log.warning("logtail %s: not a regular file, not followed", self.path)
            self._refused = True
            return False
        self._refused = False
        os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
        self._ino = (st.st_dev, st.st_ino)
        if not self._from_start:
            f.seek(0, os.SEEK_END)
        self._f = f
        return True

    def _lines(self, data: bytes) -> List[str]:
        parts = (self._buf + data).split(b"\n")
        self._buf = parts.pop()
        if self._skipping and parts:
            parts.pop(0)  # the end of a line too long to keep: not a record of its own
            self._skipping = False
        if len(self._buf) > MAX_LINE:
            self._buf = b""
            self._skipping = True
        return [p.decode("utf-8", "replace") for p in parts if len(p) <= MAX_LINE]


class LogStats:
    """Latest values per model, and the frame counter made monotonic across app runs."""

    def __init__(self) -> None:
        self.latency: Dict[str, float] = {}
        self.fps: Dict[str, float] = {}
        self.frames: Dict[str, float] = {}
        self.lag: Dict[str, float] = {}
        self.skipped: Dict[str, float] = {}
        self._last_frames: Dict[str, float] = {}
        self._lock = threading.Lock()

    def update(self, model: str, values: Dict[str, float]) -> None:
        with self._lock:
            if "latency_ms" in values:
                self.latency[model] = values["latency_ms"] / 1000.0
            if "fps" in values:
                self.fps[model] = values["fps"]
            if "frames" in values:
                now = values["frames"]
                last = self._last_frames.get(model, 0.0)
                # A smaller count means the app restarted: its frames are all new.
                self.frames[model] = self.frames.get(model, 0.0) + (
                    now - last if now >= last else now)
                self._last_frames[model] = now

    def follow(self, model: str, follower: "FileFollower") -> None:
        """Note how far the tail of ``model``'s log is behind its writer."""
        with self._lock:
            self.lag[model] = follower.lag
            self.skipped[model] = follower.skipped

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            latency, fps, frames, lag, skipped = (
                sorted(d.items()) for d in (self.latency, self.fps, self.frames, self.lag,
                                            self.skipped))
        specs = (
            (GaugeMetricFamily, "board_inference_average_latency_seconds",
             "Average inference latency printed by the app's log.", latency),
            (GaugeMetricFamily, "board_inference_fps",
             "Inference frames per second printed by the app's log.", fps),
            (CounterMetricFamily, "board_inference_frames_total",
             "Frames counted in the app's log (restarts of the app's counter are added).",
             frames),
            (GaugeMetricFamily, "board_inference_log_lag_bytes",
             "Bytes of the app's log written but not read yet by the agent.", lag),
            (CounterMetricFamily, "board_inference_log_skipped_bytes",
             "Bytes of the app's log skipped to catch up with a writer too fast to follow.",
             skipped),
        )
        for cls, name, doc, items in specs:
            if items:
                fam = cls(name, doc, labels=["model"])
                for model, value in items:
                    fam.add_metric([model], value)
                yield fam


class LogTailer:
    """A thread polling every followed file and feeding :class:`LogStats`."""

    def __init__(self, files: Sequence[Tuple[FileFollower, LogPattern, str]],
                 stats: LogStats, interval: float = 0.5) -> None:
        self.files = list(files)
        self.stats = stats
        self.interval = interval
        self._thread = LoopThread("logtail", self._poll)

    def start(self) -> None:
        if self.files:
            self._thread.start()

    def stop(self) -> None:
        self._thread.stop(2.0)
        for follower, _, _ in self.files:
            follower.close()

    def poll_once(self) -> None:
        for follower, pattern, model in self.files:
            try:
                lines = follower.poll()
            except OSError as e:
                log.warning("logtail %s: %s", follower.path, e)
                follower.close()
                continue
            self.stats.follow(model, follower)
            for line in lines:
                values = pattern.extract(line)
                if values:
                    self.stats.update(model, values)

    def _poll(self) -> float:
        self.poll_once()
        return self.interval
