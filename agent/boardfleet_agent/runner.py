"""Runs collectors for a scrape and adds the per-collector self-metrics.

Foreground collectors run on every scrape. Background collectors run in their own
thread at their interval; a scrape serves their last result and never waits on them.
"""

import copy
import logging
import threading
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from prometheus_client.core import GaugeMetricFamily, Metric

from boardfleet_agent.errors import NoData
from boardfleet_agent.registry import Collector
from boardfleet_agent.source import Source

log = logging.getLogger("boardfleet.agent")


class Outcome:
    """What one run of one collector produced."""

    __slots__ = ("absent", "duration", "error", "families", "success")

    def __init__(self, families: List[Metric], success: bool, duration: float,
                 absent: bool = False, error: str = "") -> None:
        self.families = families
        self.success = success
        self.duration = duration
        self.absent = absent
        self.error = error


def run_collector(collector: Collector, src: Source) -> Outcome:
    """Run one collector, never raising: failures become ``success=False``."""
    families: List[Metric] = []
    start = time.monotonic()
    try:
        for fam in collector.collect(src):
            families.append(fam)
    except NoData as e:
        return Outcome([], True, time.monotonic() - start, absent=True, error=str(e))
    except Exception as e:
        return Outcome(families, False, time.monotonic() - start,
                       error="%s: %s" % (type(e).__name__, e))
    return Outcome(families, True, time.monotonic() - start)


class _ErrorLog:
    """Logs each (collector, reason) once, and again only after it recovered."""

    def __init__(self) -> None:
        self._last: Dict[str, str] = {}
        self._lock = threading.Lock()

    def note(self, name: str, outcome: Outcome) -> None:
        with self._lock:
            previous = self._last.get(name, "")
            current = "" if outcome.success else outcome.error
            if current and current != previous:
                log.warning("collector %s failed: %s", name, current)
            elif not current and previous:
                log.info("collector %s recovered", name)
            self._last[name] = current
        if outcome.absent:
            log.debug("collector %s: no data (%s)", name, outcome.error)


class BackgroundSampler:
    """Runs one collector on its own thread every ``interval`` seconds."""

    def __init__(self, collector: Collector, src: Source, interval: float,
                 errors: _ErrorLog) -> None:
        self.collector = collector
        self.src = src
        self.interval = max(0.05, interval)
        self.errors = errors
        self.latest: Optional[Tuple[Outcome, float]] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="sampler-" + collector.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def sample_once(self) -> None:
        outcome = run_collector(self.collector, self.src)
        self.errors.note(self.collector.name, outcome)
        self.latest = (outcome, time.time())

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.sample_once()
            elapsed = time.monotonic() - started
            self._stop.wait(max(0.0, self.interval - elapsed))


class ScrapeRunner:
    """A prometheus_client custom collector serving every enabled board collector."""

    def __init__(self, collectors: Sequence[Collector], src: Source,
                 intervals: Optional[Dict[str, float]] = None,
                 background: bool = True) -> None:
        self.src = src
        self.errors = _ErrorLog()
        self.foreground: List[Collector] = []
        self.samplers: List[BackgroundSampler] = []
        self.last_success: Dict[str, float] = {}
        intervals = intervals or {}
        for c in collectors:
            if c.background and background:
                iv = intervals.get(c.name, c.default_interval)
                self.samplers.append(BackgroundSampler(c, src, iv, self.errors))
            else:
                self.foreground.append(c)

    def start(self) -> None:
        for s in self.samplers:
            s.start()

    def stop(self) -> None:
        for s in self.samplers:
            s.stop()
        for s in self.samplers:
            s.join(2.0)

    def sample_background_now(self) -> None:
        """Take one sample of every background collector synchronously (for ``--once``)."""
        for s in self.samplers:
            s.sample_once()

    def describe(self) -> List[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        results: List[Tuple[str, Outcome, float]] = []
        for c in self.foreground:
            outcome = run_collector(c, self.src)
            self.errors.note(c.name, outcome)
            results.append((c.name, outcome, time.time()))
        for s in self.samplers:
            latest = s.latest
            if latest is not None:
                results.append((s.collector.name, latest[0], latest[1]))

        success = GaugeMetricFamily(
            "board_collector_success",
            "1 if the collector's last run read its source, 0 if it failed.",
            labels=["collector"])
        duration = GaugeMetricFamily(
            "board_collector_duration_seconds",
            "How long the collector's last run took.", labels=["collector"])
        last_ok = GaugeMetricFamily(
            "board_collector_last_success_timestamp_seconds",
            "Unix time of the collector's last successful run.", labels=["collector"])
        merged: Dict[str, Metric] = {}
        for name, outcome, finished in sorted(results, key=lambda r: r[0]):
            if outcome.absent:
                continue
            _merge_into(merged, outcome.families)
            if outcome.success:
                self.last_success[name] = finished
            success.add_metric([name], 1.0 if outcome.success else 0.0)
            duration.add_metric([name], outcome.duration)
            if name in self.last_success:
                last_ok.add_metric([name], self.last_success[name])
        yield from merged.values()
        yield success
        yield duration
        yield last_ok


def _merge_into(merged: Dict[str, Metric], families: List[Metric]) -> None:
    """Add families, joining same-named ones from different collectors into one.

    Several collectors feed one contract metric (temperatures from thermal zones and
    hwmon, accelerator utilisation from BPU and GPU); the exposition needs one family.
    """
    for fam in families:
        have = merged.get(fam.name)
        if have is None:
            # Copy: background results are cached and served again next scrape.
            have = copy.copy(fam)
            have.samples = list(fam.samples)
            merged[fam.name] = have
        else:
            have.samples.extend(fam.samples)
