"""Agent soak harness: a real agent scraped over one HTTP/1.1 connection, under load.

:class:`Soak` copies a fixture board to a temporary sysroot, starts
``boardfleet-agent`` on free loopback ports (background collectors sampled every
2 s, an app log tailed), loads it (:mod:`support.soakload`: StatsD datagrams, files
that keep changing, the app log rotating) and scrapes ``/metrics`` at a fixed rate or
as fast as it answers, checking every answer.
A sampler thread records the agent's RSS, open fds and threads from ``/proc/<pid>``.
``tests/agent/test_soak.py`` runs it for seconds, ``benchmarks/agent_soak.py`` for
half an hour. The agent is a black box: HTTP plus ``/proc``.
"""

import http.client
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Set, Tuple

from support.agent import agent_cmd
from support.net import free_port, wait_http
from support.paths import FIXTURES, REPO
from support.process import terminate
from support.soakload import STABLE_MODELS, FileChurn, StatsdLoad

# Background collectors run every 2 s instead of every 10-15 s: five to seven times the
# tool runs (hiddrs, hrut_ddr) and file reads for a leak to show in, while a tool run
# (~0.8 s for the fixtures' fake tools, holding a pipe) still leaves gaps to see the
# steady fd count in.
FAST_BACKGROUND = ("mmz", "hisi_ddr", "horizon_ddr", "dmabuf_process")
BACKGROUND_INTERVAL = 2
APP_LOG_MODEL = "applog"  # the log tail's model label
# Families every answer has whatever the board files hold: proof the whole registry ran.
REQUIRED = ("board_collector_success", "board_collector_duration_seconds",
            "process_resident_memory_bytes", "process_open_fds")
_SAMPLE = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*\})?'
                     r" \S+(?: -?\d+)?\Z")
# Pause before a sample: an HTTP/1.0 server closes the socket (and a handler thread
# ends) just after the answer.
QUIET = 0.005
MAX_ERRORS = 50  # a run stops after this many bad answers
_SUCCESS = re.compile(r'^board_collector_success\{collector="([^"]+)"\} (\S+)$', re.M)


@dataclass
class ProcSample:
    """The agent process at one moment (``t``: seconds since the run started)."""

    t: float
    rss_kib: int
    fds: int
    threads: int
    scrapes: int


def proc_sample(pid: int, t: float, scrapes: int) -> ProcSample:
    """RSS (VmRSS), open fds and threads of ``pid``; OSError once it is gone."""
    status = Path("/proc/%d/status" % pid).read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if "VmRSS" not in fields:  # a zombie: exited, not yet reaped
        raise ProcessLookupError(pid)
    return ProcSample(t, int(fields["VmRSS"].split()[0]), len(os.listdir("/proc/%d/fd" % pid)),
                      int(fields["Threads"]), scrapes)


def slope(points: Sequence[Tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two distinct x)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def check_exposition(body: str) -> str | None:
    """Why ``body`` is not one complete text exposition, or None if it is."""
    if not body.endswith("\n"):
        return "does not end with a newline (cut short?)"
    for line in body.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            continue
        if not _SAMPLE.match(line):
            return "malformed line %r" % line[:200]
    missing = [f for f in REQUIRED if "# TYPE %s " % f not in body]
    return "missing families %s" % ", ".join(missing) if missing else None


def collector_outcomes(body: str) -> Dict[str, bool]:
    """``{collector: success}`` from ``board_collector_success``."""
    return {name: float(v) == 1.0 for name, v in _SUCCESS.findall(body)}


def inference_count(body: str, models: Sequence[str] = STABLE_MODELS) -> float:
    """Sum of ``board_inference_latency_seconds_count`` over ``models``."""
    total = 0.0
    for line in body.splitlines():
        if line.startswith("board_inference_latency_seconds_count{"):
            model = re.search(r'model="([^"]*)"', line)
            if model and model.group(1) in models:
                total += float(line.rsplit(" ", 1)[1])
    return total


class _Connection(http.client.HTTPConnection):
    """Counts TCP connections (http.client reopens one after ``Connection: close``)."""

    connects = 0
    answered = 0  # answers on the current connection

    def connect(self) -> None:
        super().connect()
        self.connects += 1
        self.answered = 0


class Scraper:
    """GETs over one persistent HTTP/1.1 connection, reconnecting when the server closes."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.conn = _Connection("127.0.0.1", port, timeout=timeout)
        self.stale_retries = 0

    @property
    def connects(self) -> int:
        return self.conn.connects

    def get(self, path: str = "/metrics") -> Tuple[int, str]:
        """(status, body). A kept-alive connection the server closed is retried once."""
        reused = self.conn.sock is not None and self.conn.answered > 0
        try:
            return self._get(path)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()
            if not reused:
                raise
            self.stale_retries += 1
            return self._get(path)

    def _get(self, path: str) -> Tuple[int, str]:
        self.conn.request("GET", path)
        resp = self.conn.getresponse()
        body = resp.read().decode()
        self.conn.answered += 1
        return resp.status, body

    def close(self) -> None:
        self.conn.close()


@dataclass
class SoakResult:
    """What a run saw. ``errors``: bad or missing answers, each with its scrape number."""

    scrapes: int = 0
    errors: List[str] = field(default_factory=list)
    samples: List[ProcSample] = field(default_factory=list)
    latencies: List[float] = field(default_factory=list)
    collector_failures: int = 0  # scrapes with a collector at 0 (a file read mid-rewrite)
    connects: int = 0
    stale_retries: int = 0
    file_writes: int = 0
    statsd_sent: int = 0
    statsd_counted: float = 0.0
    first_body: str = ""
    last_body: str = ""
    # The last scrape in which every collector succeeded (a file caught mid-rewrite in
    # place fails its collector for that one scrape, as it should).
    last_good_body: str = ""
    agent_exit: int | None = None  # set if the agent died during the run
    log: str = ""  # the agent's stderr

    def window(self, start: float, end: float) -> List[ProcSample]:
        """Samples with ``start <= t < end`` (seconds since the run started)."""
        return [s for s in self.samples if start <= s.t < end]


@dataclass
class Steady:
    """A window of samples reduced to steady values: transients filtered out.

    A tool run holds a pipe, a scrape a socket and a thread for a moment: the fewest fds
    and threads in a window are the steady ones. RSS is the window's median.
    """

    rss_kib: float
    fds: int
    threads: int

    @classmethod
    def of(cls, samples: Sequence[ProcSample]) -> "Steady":
        if not samples:
            raise ValueError("no samples in the window")
        return cls(statistics.median(s.rss_kib for s in samples),
                   min(s.fds for s in samples), min(s.threads for s in samples))


def steady_series(samples: Sequence[ProcSample], start: float, bucket: float,
                  ) -> List[Tuple[float, Steady]]:
    """(bucket middle, :class:`Steady`) for each ``bucket`` seconds of samples from ``start``."""
    out: List[Tuple[float, Steady]] = []
    end = max((s.t for s in samples), default=start)
    t = start
    while t < end:
        window = [s for s in samples if t <= s.t < t + bucket]
        if window:
            out.append((t + bucket / 2, Steady.of(window)))
        t += bucket
    return out


def _agent_config(fixture: Path, app_log: Path) -> str:
    """The fixture's own agent.toml (if any), FAST_BACKGROUND intervals, a log tail."""
    own = fixture / "agent.toml"
    text = own.read_text() if own.exists() else ""
    text += '\n[logtail]\npoll_interval = 0.1\n[logtail.%s]\npath = "%s"\n' % (
        APP_LOG_MODEL, app_log)
    for name in FAST_BACKGROUND:
        header = "[collectors.%s]" % name
        setting = "interval = %d" % BACKGROUND_INTERVAL
        if header in text:
            text = text.replace(header, header + "\n" + setting, 1)
        else:
            text += "\n%s\n%s\n" % (header, setting)
    return text


class Soak:
    """A served agent on a copy of ``tests/fixtures/<board>`` with StatsD and file load.

    Use as a context manager; :meth:`run` scrapes and samples, and may be called once.
    """

    def __init__(self, workdir: Path, board: str = "hi3516ev200", statsd_rate: float = 2000,
                 churn_period: float = 0.1, sample_every: float = 0.1) -> None:
        self.workdir = workdir
        self.sysroot = workdir / "sysroot"
        shutil.copytree(FIXTURES / board, self.sysroot, symlinks=True)
        self.config = workdir / "agent.toml"
        self.config.write_text(_agent_config(FIXTURES / board, workdir / "app.log"))
        self.log_path = workdir / "agent.log"
        self.port, self.udp_port = free_port(), free_port(socket.SOCK_DGRAM)
        self.statsd = StatsdLoad(self.udp_port, statsd_rate) if statsd_rate else None
        self.churn = FileChurn(self.sysroot, churn_period, app_log=workdir / "app.log")
        self.sample_every = sample_every
        self._quiet = threading.Lock()  # held by a scrape; samples wait for it
        self.proc: subprocess.Popen | None = None
        self.scraper: Scraper | None = None

    def __enter__(self) -> "Soak":
        path = (str(REPO / "agent"), os.environ.get("PYTHONPATH", ""))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in path if p))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                agent_cmd("--sysroot", str(self.sysroot), "--config", str(self.config),
                          "--listen", "127.0.0.1:%d" % self.port,
                          "--statsd-listen", "127.0.0.1:%d" % self.udp_port),
                stdout=subprocess.DEVNULL, stderr=log, env=env)
        try:
            wait_http("http://127.0.0.1:%d/-/healthy" % self.port)
        except TimeoutError:
            self.__exit__()
            raise
        self.scraper = Scraper(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.statsd is not None:
            self.statsd.stop()
        self.churn.stop()
        if self.scraper is not None:
            self.scraper.close()
        if self.proc is not None:
            terminate(self.proc, 10)

    def run(self, scrapes: int | None = None, duration: float | None = None,
            rate: float | None = None, progress_every: float = 0.0,
            progress: Callable[[SoakResult], None] | None = None) -> SoakResult:
        """Scrape until ``scrapes`` answers or ``duration`` seconds, whichever first.

        ``rate``: scrapes per second (None: back to back). Before any load starts, the
        baseline (:meth:`_baseline`): every collector succeeds on pristine files.
        ``progress(result)`` is called every ``progress_every`` seconds.
        """
        assert self.proc is not None and self.scraper is not None
        res = SoakResult()
        baseline = self._baseline(res)
        if not baseline:
            return self._finish(res)
        if self.statsd is not None:
            self.statsd.start()
        self.churn.start()
        t0 = time.monotonic()
        stop = threading.Event()
        sampler = threading.Thread(target=self._sample, args=(res, t0, stop), daemon=True)
        sampler.start()
        next_progress = progress_every
        try:
            while (scrapes is None or res.scrapes < scrapes) and (
                    duration is None or time.monotonic() - t0 < duration):
                if rate:
                    time.sleep(max(0.0, t0 + res.scrapes / rate - time.monotonic()))
                if not self._scrape(res, set(baseline)) or len(res.errors) >= MAX_ERRORS:
                    break
                if progress and progress_every and time.monotonic() - t0 >= next_progress:
                    next_progress += progress_every
                    progress(res)
        finally:
            stop.set()
            sampler.join(10)
        return self._finish(res)

    def _baseline(self, res: SoakResult, settle: float = 2.0, timeout: float = 20.0,
                  ) -> Set[str]:
        """The collectors reporting once background samplers have reported too.

        Pristine files: every collector must succeed. Waits until the set has not
        changed for ``settle`` seconds; records a failure in ``res.errors`` and returns
        an empty set if the answer is bad or the set never settles.
        """
        assert self.scraper is not None
        seen: Set[str] = set()
        since = deadline = time.monotonic()
        deadline += timeout
        while time.monotonic() < deadline:
            try:
                status, res.first_body = self.scraper.get()
            except (OSError, http.client.HTTPException) as e:
                res.errors.append("baseline scrape: %s: %s" % (type(e).__name__, e))
                return set()
            outcomes = collector_outcomes(res.first_body)
            problem = check_exposition(res.first_body) or (
                "collectors failing on pristine files: %s" % outcomes
                if not outcomes or not all(outcomes.values()) else None)
            if status != 200 or problem:
                res.errors.append("baseline scrape: status %d, %s" % (status, problem))
                return set()
            if set(outcomes) != seen:
                seen, since = set(outcomes), time.monotonic()
            elif time.monotonic() - since >= settle:
                return seen
            time.sleep(0.25)
        res.errors.append("collectors never settled: last %s" % sorted(seen))
        return set()

    def _scrape(self, res: SoakResult, collectors: Set[str]) -> bool:
        """One checked scrape; False if the agent is gone."""
        assert self.proc is not None and self.scraper is not None
        started = time.monotonic()
        try:
            with self._quiet:
                status, body = self.scraper.get()
        except (OSError, http.client.HTTPException) as e:
            self.scraper.close()
            res.errors.append("scrape %d: %s: %s" % (res.scrapes, type(e).__name__, e))
            return self.proc.poll() is None
        res.latencies.append(time.monotonic() - started)
        res.scrapes += 1
        problem = "status %d" % status if status != 200 else check_exposition(body)
        if problem:
            res.errors.append("scrape %d: %s" % (res.scrapes, problem))
        outcomes = collector_outcomes(body)
        if not all(outcomes.values()) or set(outcomes) != collectors:
            res.collector_failures += 1
        else:
            res.last_good_body = body
        res.last_body = body
        return True

    def _sample(self, res: SoakResult, t0: float, stop: threading.Event) -> None:
        """Sample between scrapes, once the agent had a moment to close the last one.

        Jittered: a fixed period can lock onto a tool's cycle and only ever see it run.
        """
        assert self.proc is not None
        while not stop.wait(self.sample_every * random.uniform(0.5, 1.5)):
            with self._quiet:
                time.sleep(QUIET)
                try:
                    res.samples.append(proc_sample(self.proc.pid, time.monotonic() - t0,
                                                   res.scrapes))
                except OSError:
                    return

    def _finish(self, res: SoakResult) -> SoakResult:
        """Stop the load, let the agent drain its socket, read the final counts."""
        assert self.proc is not None and self.scraper is not None
        if self.statsd is not None:
            self.statsd.stop()
            res.statsd_sent = self.statsd.sent
        self.churn.stop()
        res.file_writes = self.churn.writes
        res.agent_exit = self.proc.poll()
        if res.agent_exit is None and self.statsd is not None:
            res.statsd_counted = self._settled_count()
        res.connects, res.stale_retries = self.scraper.connects, self.scraper.stale_retries
        res.log = self.log_path.read_text(errors="replace")
        return res

    def _settled_count(self, timeout: float = 15.0) -> float:
        """Stable-model timings counted, once two reads 1.2 s apart agree."""
        assert self.scraper is not None
        last, deadline = -1.0, time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = inference_count(self.scraper.get()[1])
            if now == last:
                break
            last = now
            time.sleep(1.2)
        return last
