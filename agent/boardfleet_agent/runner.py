"""Samples the collectors off the scrape path and serves their last results.

In the agent (``background=True``) no collector runs during a scrape:

- quick collectors run on one scheduler thread, each every ``interval`` seconds
  (1 s unless the collector or the config says otherwise);
- collectors marked ``background`` (vendor tools, kernel locks) run on a thread each,
  so one that blocks delays nobody;
- after each round the scheduler renders the exposition text once, and a scrape
  returns those bytes. Its cost does not depend on the collectors, and any number of
  concurrent scrapers get the same complete sample.

With ``background=False`` (``--once``, agentless probes) :meth:`ScrapeRunner.collect`
runs every collector on the spot. Intervals and durations use the monotonic clock and
sleeps use :class:`~boardfleet_agent.wakeup.Wakeup`, so wall-clock jumps neither stall
nor spin the samplers; only the exported timestamps are wall-clock time.
"""

import copy
import logging
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from boardfleet_agent.errors import NoData
from boardfleet_agent.exposition import render
from boardfleet_agent.registry import Collector
from boardfleet_agent.source import Source
from boardfleet_agent.wakeup import Wakeup

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


DEFAULT_INTERVAL = 1.0


class BackgroundSampler:
    """Runs one slow collector on its own thread every ``interval`` seconds."""

    def __init__(self, collector: Collector, src: Source, interval: float,
                 errors: _ErrorLog, on_sample: Callable[[], None]) -> None:
        self.collector = collector
        self.src = src
        self.interval = max(0.05, interval)
        self.errors = errors
        self.on_sample = on_sample
        self.latest: Optional[Tuple[Outcome, float]] = None
        self._stopping = False
        self._wakeup: Optional[Wakeup] = None  # created by start(): fds only while running
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._wakeup = Wakeup()
        self._thread = threading.Thread(target=self._loop, args=(self._wakeup,),
                                        name="sampler-" + self.collector.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.wake()

    def join(self, timeout: float) -> None:
        if self._thread is None or self._wakeup is None:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("collector %s did not stop within %gs", self.collector.name, timeout)
        else:
            self._wakeup.close()

    def _loop(self, wakeup: Wakeup) -> None:
        while not self._stopping:
            started = time.monotonic()
            outcome = run_collector(self.collector, self.src)
            self.errors.note(self.collector.name, outcome)
            self.latest = (outcome, time.time())
            self.on_sample()
            wakeup.sleep(max(0.0, self.interval - (time.monotonic() - started)))


class _Slot:
    """A quick collector's schedule and last result."""

    __slots__ = ("collector", "due", "interval", "latest")

    def __init__(self, collector: Collector, interval: float) -> None:
        self.collector = collector
        self.interval = max(0.05, interval)
        self.due = 0.0
        self.latest: Optional[Tuple[Outcome, float]] = None


class ScrapeRunner:
    """A prometheus_client custom collector serving every enabled board collector."""

    def __init__(self, collectors: Sequence[Collector], src: Source,
                 intervals: Optional[Dict[str, float]] = None,
                 background: bool = True, interval: float = DEFAULT_INTERVAL) -> None:
        self.src = src
        self.errors = _ErrorLog()
        self.quick: List[_Slot] = []
        self.samplers: List[BackgroundSampler] = []
        self.last_success: Dict[str, float] = {}
        intervals = intervals or {}
        for c in collectors:
            iv = intervals.get(c.name, c.default_interval or interval)
            if c.background and background:
                self.samplers.append(
                    BackgroundSampler(c, src, iv, self.errors, self._sampled))
            else:
                self.quick.append(_Slot(c, iv))
        self._background = background
        self._rendered = b""
        self._dirty = False
        self._started = False
        self._stopping = False
        self._wakeup: Optional[Wakeup] = None  # created by start()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Sample the quick collectors once, render, then keep sampling on threads."""
        if not self._background or self._started:
            return
        self._started = True
        self._wakeup = Wakeup()
        self._sample_due(time.monotonic())
        self._rendered = render(self.collect())
        for s in self.samplers:
            s.start()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        for s in self.samplers:
            s.stop()
        if self._wakeup is not None:
            self._wakeup.wake()
        if self._thread is not None:
            self._thread.join(2.0)
        for s in self.samplers:
            s.join(2.0)
        if self._wakeup is not None and not (self._thread and self._thread.is_alive()):
            self._wakeup.close()  # a late wake from a stuck sampler is then a no-op

    def exposition(self) -> bytes:
        """The board's metrics as exposition text: the last rendering once started."""
        if not self._started:
            return render(self.collect())
        return self._rendered

    def _sampled(self) -> None:
        """Called by a background sampler after each sample: render it soon."""
        self._dirty = True
        wakeup = self._wakeup
        if wakeup is not None:
            wakeup.wake()

    def _loop(self) -> None:
        wakeup = self._wakeup
        assert wakeup is not None
        while not self._stopping:
            if self._sample_due(time.monotonic()) or self._dirty:
                self._dirty = False
                self._rendered = render(self.collect())
            wakeup.sleep(self._until_next_due())

    def _sample_due(self, now: float) -> bool:
        """Run the quick collectors due at ``now``; True if any ran."""
        ran = False
        for slot in self.quick:
            if now < slot.due:
                continue
            outcome = run_collector(slot.collector, self.src)
            self.errors.note(slot.collector.name, outcome)
            slot.latest = (outcome, time.time())
            slot.due += slot.interval
            if slot.due <= now:  # the first run, or one that overran: a new cadence
                slot.due = now + slot.interval
            ran = True
        return ran

    def _until_next_due(self) -> Optional[float]:
        if not self.quick:
            return None
        return max(0.0, min(s.due for s in self.quick) - time.monotonic())

    def describe(self) -> List[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if not self._started:
            # Not sampling in the background: every quick collector runs now.
            for slot in self.quick:
                slot.due = 0.0
            self._sample_due(time.monotonic())
        results: List[Tuple[str, Outcome, float]] = []
        skipped_by: Dict[str, int] = {}
        for c, latest in [(s.collector, s.latest) for s in self.quick] + [
                (s.collector, s.latest) for s in self.samplers]:
            if latest is not None:
                results.append((c.name, latest[0], latest[1]))
                skipped_by[c.name] = c.skips.total

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
        skipped = CounterMetricFamily(
            "board_collector_skipped_lines",
            "Lines the collector's parsers skipped because they match no known shape.",
            labels=["collector"])
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
            skipped.add_metric([name], skipped_by[name])
        yield from merged.values()
        yield success
        yield duration
        yield last_ok
        yield skipped


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
