"""Samples the collectors off the HTTP thread and serves their results.

In the agent (``background=True``) collectors run on threads of their own:

- quick collectors run on one scheduler thread, each at most every ``interval`` seconds
  (1 s unless the collector or the config says otherwise). With ``on_demand`` (the
  agent's default) a round runs when a scrape asks for one: the scrape wakes the
  scheduler and waits for the round, so values are read at scrape time as
  node_exporter reads them, an idle agent reads nothing, and concurrent scrapes within
  ``interval`` share one round. Once scrapes come at an even cadence, the round runs
  just before the next one is due (:mod:`~boardfleet_agent.cadence`), which is then
  served at once. Without it the scheduler samples at that pace whether
  or not anyone scrapes, and a scrape returns the last round at once;
- collectors marked ``background`` (vendor tools, kernel locks) run on a thread each,
  so one that blocks delays nobody;
- each round is rendered to exposition text once, and a scrape returns those bytes:
  any number of concurrent scrapers get the same complete sample.

With ``background=False`` (``--once``, agentless probes) :meth:`ScrapeRunner.collect`
runs every collector on the spot.

Given a ``timeout`` (the agent's ``collector_timeout``), no collector run can hold the
sampling up: quick collectors run on a worker with that deadline
(:mod:`~boardfleet_agent.watchdog`), a background sampler whose run overruns its
interval plus the timeout is reported stuck, and either way the collector is served
as failed with no families while ``board_collector_last_success_timestamp_seconds``
stops advancing. A scrape waits for a round at most ``1.5 * timeout + 1`` seconds. The
scheduler survives any exception; ``/-/healthy`` fails when it made no round for long
(on demand: when a scrape waited long for one; an agent no one scrapes sleeps).
Intervals and durations use the monotonic clock and sleeps use
:class:`~boardfleet_agent.wakeup.Wakeup`, so wall-clock jumps neither stall nor spin
the samplers; only the exported timestamps are wall-clock time.
"""

import copy
import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from boardfleet_agent import cadence
from boardfleet_agent.exposition import render
from boardfleet_agent.families import CounterMetricFamily, GaugeMetricFamily, Metric
from boardfleet_agent.log import log
from boardfleet_agent.outcome import Outcome, run_collector
from boardfleet_agent.registry import Collector
from boardfleet_agent.source import Source
from boardfleet_agent.threads import LoopThread
from boardfleet_agent.watchdog import DeadlineRunner, clear_stuck, is_stuck, mark_stuck, timed_out

__all__ = ["Outcome", "ScrapeRunner", "run_collector"]


class _ErrorLog:
    """Logs each (collector, reason) once, and again only after it recovered.

    A collector whose source goes away (a driver unloaded, ``media-mem`` gone) or comes
    back is logged at info level: its series disappear or return.
    """

    def __init__(self) -> None:
        self._last: Dict[str, str] = {}
        self._absent: Dict[str, bool] = {}
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
            was_absent = self._absent.get(name)
            self._absent[name] = outcome.absent
        if outcome.absent and was_absent is False:
            log.info("collector %s: its source is gone (%s); its series are dropped",
                     name, outcome.error)
        elif not outcome.absent and was_absent:
            log.info("collector %s: its source is back", name)
        elif outcome.absent:
            log.debug("collector %s: no data (%s)", name, outcome.error)


DEFAULT_INTERVAL = 1.0
# Seconds the scheduler may go without a round before /-/healthy fails, at least.
MIN_STALL = 30.0


class BackgroundSampler:
    """Runs one slow collector on its own thread every ``interval`` seconds.

    A run still going ``interval + timeout`` seconds after it started is stuck: it is
    served as failed, and no other sampler of the same collector (one built on
    SIGHUP) starts a second blocked read until it returns.
    """

    def __init__(self, collector: Collector, src: Source, interval: float,
                 errors: _ErrorLog, on_sample: Callable[[], None],
                 timeout: Optional[float] = None) -> None:
        self.collector = collector
        self.src = src
        self.interval = max(0.05, interval)
        self.errors = errors
        self.on_sample = on_sample
        self.deadline = None if timeout is None else self.interval + timeout
        self.latest: Optional[Tuple[Outcome, float]] = None
        self.running_since: Optional[float] = None  # monotonic start of the current run
        self.timeouts = 0
        self.thread = LoopThread("sampler-" + collector.name, self._sample)

    def check(self) -> Optional[Tuple[Outcome, float]]:
        """The latest result to serve: a stuck outcome while the current run overruns."""
        started = self.running_since
        if (self.deadline is not None and started is not None
                and time.monotonic() - started > self.deadline):
            if not is_stuck(self.collector.name):
                mark_stuck(self.collector.name, started)
                self.timeouts += 1
                outcome = timed_out(self.deadline)
                self.errors.note(self.collector.name, outcome)
            return timed_out(self.deadline), time.time()
        return self.latest

    def _sample(self) -> float:
        """One run (or a stuck outcome); the seconds until the next."""
        name = self.collector.name
        started = time.monotonic()
        if is_stuck(name):  # a sampler replaced on SIGHUP is still blocked in it
            self.latest = (timed_out(self.deadline or 0.0), time.time())
        else:
            self.running_since = started
            outcome = run_collector(self.collector, self.src)
            self.running_since = None
            clear_stuck(name)
            self.errors.note(name, outcome)
            self.latest = (outcome, time.time())
        self.on_sample()
        return max(0.0, self.interval - (time.monotonic() - started))


class _Slot:
    """A quick collector's schedule and last result."""

    __slots__ = ("collector", "due", "interval", "latest")

    def __init__(self, collector: Collector, interval: float) -> None:
        self.collector = collector
        self.interval = max(0.05, interval)
        self.due = 0.0
        self.latest: Optional[Tuple[Outcome, float]] = None


class ScrapeRunner:
    """Serves every enabled board collector as exposition text.

    ``timeout`` bounds each collector run (None: runs inline, for in-memory sources).
    ``on_demand``: quick collectors run when a scrape asks, not at their pace.
    """

    def __init__(self, collectors: Sequence[Collector], src: Source,
                 intervals: Optional[Dict[str, float]] = None,
                 background: bool = True, interval: float = DEFAULT_INTERVAL,
                 timeout: Optional[float] = None, on_demand: bool = False) -> None:
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
                    BackgroundSampler(c, src, iv, self.errors, self._sampled, timeout))
            else:
                self.quick.append(_Slot(c, iv))
        # Start-up and --once rounds run on a worker with a deadline per collector; the
        # scheduler thread runs collectors itself, and a watchdog thread replaces it when
        # it is stuck in one (no thread handover per collector in the steady state).
        self._timeout = timeout
        self._deadline = None if timeout is None else DeadlineRunner(timeout, self._late)
        self._lock = threading.Lock()
        self._generation = 0  # bumped when the watchdog gives up on a scheduler thread
        self._current: Optional[Tuple[_Slot, float]] = None  # the scheduler's run now
        self._given_up: Dict[str, int] = {}
        self._watch: Optional[LoopThread] = None
        # The scheduler is stalled when no round ran for this long.
        self.stall_after = max([MIN_STALL] + [3 * s.interval for s in self.quick]
                               + [3 * (timeout or 0.0)])
        self.heartbeat = time.monotonic()
        self._background = background
        self._on_demand = on_demand
        # Set when the round a scrape waits for is rendered; None: no scrape waits.
        self._wanted: Optional[threading.Event] = None
        self._serving: Optional[threading.Event] = None  # the round running now
        self._asked_since: Optional[float] = None  # monotonic: a scrape has waited since
        # On demand: when scrapes came, the one the scheduler reads ahead for next, the
        # last one it read ahead for, and how long its last round took (cadence.py).
        self._asks: Deque[float] = deque(maxlen=cadence.KEEP)
        self._planned: Optional[float] = None
        self._read_for: Optional[float] = None
        self._round_seconds = 0.0
        self._rendered = b""
        self._dirty = False
        self._in_round = False
        self._started = False
        self._stopping = False
        self._scheduler: Optional[LoopThread] = None  # one per generation

    def start(self) -> None:
        """Sample the quick collectors once, render, then keep sampling on threads."""
        if not self._background or self._started:
            return
        self._started = True
        self._round(None)
        if self._deadline is not None:
            self._deadline.close()  # its worker served the start-up round only
        for s in self.samplers:
            s.thread.start()
        self._spawn_scheduler()
        if self._timeout is not None and not self._on_demand:
            # On demand, the scrape waiting for a round watches it (exposition()).
            self._watch = LoopThread("sampling-watchdog", self._watch_step)
            self._watch.start()

    def _spawn_scheduler(self) -> None:
        generation = self._generation
        self._scheduler = LoopThread("scheduler", lambda: self._schedule(generation))
        self._scheduler.start()

    def stop(self) -> None:
        """Stop sampling; waits at most a few seconds in all, never on a blocked read."""
        with self._lock:  # scrapes waiting for a round get the last one
            self._stopping = True  # under the lock: no scheduler is spawned after this
            for waiting in (self._wanted, self._serving):
                if waiting is not None:
                    waiting.set()
        threads = [t for t in (self._scheduler, self._watch) if t is not None]
        threads += [s.thread for s in self.samplers]
        for thread in threads:
            thread.stop(0.0)  # all end together; then wait for them 2 s in all
        deadline = time.monotonic() + 2.0
        for thread in threads:
            if not thread.stop(max(0.05, deadline - time.monotonic())):
                log.warning("thread %s did not stop within 2s; its run ends alone", thread.name)
        if self._deadline is not None:
            self._deadline.close()

    def exposition(self) -> bytes:
        """The board's metrics as exposition text: the last rendering once started.

        On demand, a scrape first waits for a round if one is under way, a quick
        collector is due, a background sample is new, or a background run is going (to
        see it overrun).
        """
        if not self._started:
            return render(self.collect())
        if self._on_demand:
            self._asks.append(time.monotonic())
        if self._on_demand and not self._stopping and (self._in_round or self._dirty or any(
                time.monotonic() >= s.due for s in self.quick) or any(
                s.running_since is not None for s in self.samplers)):
            with self._lock:
                if self._wanted is None:
                    self._wanted = threading.Event()
                    if self._asked_since is None:
                        self._asked_since = time.monotonic()
                wanted = self._wanted
            scheduler = self._scheduler
            if scheduler is not None:
                scheduler.wake()
            # The waiting scrape is the watchdog (no thread wakes while no one scrapes):
            # every timeout/2 it looks whether the round overran and gives it up, and a
            # fresh scheduler serves the scrape, within 1.5 x timeout: with the default
            # 5 s, before Prometheus's default 10 s scrape timeout.
            timeout = self._timeout or 5.0
            deadline = time.monotonic() + 1.5 * timeout + 1
            while not wanted.wait(max(0.0, min(timeout / 2, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    break
                if self._timeout is not None:
                    self._give_up_if_stuck()
        return self._rendered

    def healthy(self) -> Tuple[bool, str]:
        """Whether sampling goes on: the scheduler is alive and ran a round lately (on
        demand: no scrape has waited for a round for long)."""
        if not self._started:
            return True, "not sampling in the background"
        scheduler = self._scheduler
        if scheduler is not None and not scheduler.alive and not self._stopping:
            return False, "the sampling scheduler thread has ended"
        if self._on_demand:
            since = self._asked_since
            waited = 0.0 if since is None else time.monotonic() - since
            if waited > self.stall_after:
                return False, "no sampling round for %.0fs: a scrape waits for one" % waited
            return True, "sampling"
        idle = time.monotonic() - self.heartbeat
        if idle > self.stall_after:
            return False, "no sampling round for %.0fs" % idle
        return True, "sampling"

    def _sampled(self) -> None:
        """Called by a background sampler after each sample: render it soon (on
        demand: at the next scrape)."""
        self._dirty = True
        scheduler = self._scheduler
        if scheduler is not None and not self._on_demand:
            scheduler.wake()

    def _late(self, collector: Collector, outcome: Outcome) -> None:
        """A run given up on returned at last: serve its result from now on."""
        log.warning("collector %s returned after its deadline (%.1fs)",
                    collector.name, outcome.duration)
        for slot in self.quick:
            if slot.collector is collector:
                self.errors.note(collector.name, outcome)
                slot.latest = (outcome, time.time())
        self._sampled()

    def _schedule(self, generation: int) -> Optional[float]:
        """A scheduler step: a round if due (on demand: if wanted, or just before the
        scrape the cadence predicts); seconds to the next."""
        wanted = None
        if self._on_demand:
            with self._lock:
                wanted, self._wanted = self._wanted, None
                self._serving = wanted
        planned = self._planned
        ahead = (self._on_demand and wanted is None and planned is not None
                 and time.monotonic() >= planned - self._lead())
        try:
            if wanted is not None or not self._on_demand or ahead:
                started = time.monotonic()
                if ahead:
                    # Also what falls due before the scrape, or it would wait for that.
                    self._read_for = planned
                    assert planned is not None
                    self._round(generation, horizon=(planned - started) + self._period() / 2)
                else:
                    self._round(generation)
                self._round_seconds = time.monotonic() - started
        except Exception:  # never let one bad round end sampling for good
            log.exception("sampling round failed")
        if generation != self._generation:
            return None  # given up on (and stopped) while stuck: a fresh thread took over
        if wanted is not None:
            with self._lock:
                self._serving = None
                # A scrape that asked during the round waits from about now.
                self._asked_since = None if self._wanted is None else time.monotonic()
            wanted.set()
        return self._until_next_due()

    def _watch_step(self) -> float:
        """The watchdog thread's step (not on demand): look every timeout/2."""
        assert self._timeout is not None
        self._give_up_if_stuck()
        return self._timeout / 2

    def _give_up_if_stuck(self) -> None:
        """Give up on a scheduler thread stuck in one collector run; start a fresh one."""
        timeout = self._timeout
        assert timeout is not None
        with self._lock:
            current = self._current
            if self._stopping or current is None or (
                    time.monotonic() - current[1] <= timeout):
                return
            if self._scheduler is not None:  # stopped before the generation moves on
                self._scheduler.stop(0.0)  # it ends (closing its pipe) when its run returns
            self._generation += 1
            self._current = None
            # The scrapes the stuck round served wait for the fresh thread's round.
            serving, self._serving = self._serving, None
            if serving is not None:
                if self._wanted is None:
                    self._wanted = serving
                else:
                    serving.set()  # the next round is wanted anyway: serve now
        slot, started = current
        name = slot.collector.name
        mark_stuck(name, started)
        self._given_up[name] = self._given_up.get(name, 0) + 1
        outcome = timed_out(timeout)
        self.errors.note(name, outcome)
        slot.latest = (outcome, time.time())
        slot.due = time.monotonic() + slot.interval
        self._dirty = True
        with self._lock:
            if not self._stopping:
                self._spawn_scheduler()

    def _round(self, generation: Optional[int], horizon: float = 0.0) -> None:
        """Run the due collectors and render if anything changed.

        ``generation`` None: a round outside the scheduler thread, bounded by the
        deadline runner; else the scheduler thread's round, watched by the watchdog.
        """
        # From its first read until its rendering is served, a round is under way: a
        # scrape then finds nothing due, but waits for the round, not the last one's text.
        self._in_round = True
        try:
            if self._sample_due(time.monotonic() + horizon, generation) or self._dirty or any(
                    s.running_since is not None for s in self.samplers):
                if generation is not None and generation != self._generation:
                    return
                self._dirty = False
                self._rendered = render(self.collect())
        finally:
            self._in_round = False
        self.heartbeat = time.monotonic()

    def _run_watched(self, slot: _Slot, generation: int) -> Optional[Outcome]:
        """Run a quick collector on this scheduler thread; None if given up on meanwhile."""
        name = slot.collector.name
        if is_stuck(name):
            return timed_out(self._timeout or 0.0)
        with self._lock:
            self._current = (slot, time.monotonic())
        outcome = run_collector(slot.collector, self.src)
        with self._lock:
            self._current = None
            given_up = generation != self._generation
        if given_up:
            clear_stuck(name)
            self._late(slot.collector, outcome)
            return None
        return outcome

    def _sample_due(self, now: float, generation: Optional[int] = None) -> bool:
        """Run the quick collectors due at ``now``; True if any ran."""
        due = [slot for slot in self.quick if now >= slot.due]
        if not due:
            return False
        outcomes: Dict[str, Outcome] = {}
        if generation is None:
            if self._deadline is None:
                outcomes = {s.collector.name: run_collector(s.collector, self.src) for s in due}
            else:
                outcomes = self._deadline.run([slot.collector for slot in due], self.src)
        for slot in due:
            if generation is None:
                outcome = outcomes[slot.collector.name]
            else:
                watched = self._run_watched(slot, generation)
                if watched is None:
                    return False
                outcome = watched
            self.errors.note(slot.collector.name, outcome)
            slot.latest = (outcome, time.time())
            slot.due += slot.interval
            if slot.due <= now:  # the first run, or one that overran: a new cadence
                slot.due = now + slot.interval
        return True

    def _period(self) -> float:
        return cadence.period(self._asks) or 0.0

    def _lead(self) -> float:
        """How long before a predicted scrape to read: a few rounds' time, 10 ms at least
        (a scrape that comes before the round is done waits for it: about a round)."""
        return min(1.0, max(0.01, 3 * self._round_seconds))

    def _until_next_due(self) -> Optional[float]:
        if self._on_demand:
            # Idle until a scrape wakes it, or until just before the scrape it expects.
            if self._wanted is not None:
                return 0.0
            now = time.monotonic()
            # Scrapes faster than the collectors' interval share rounds already.
            min_period = min((s.interval for s in self.quick), default=float("inf"))
            self._planned = cadence.next_ask(self._asks, now, self._read_for, min_period)
            if self._planned is None:
                return None
            return max(0.0, self._planned - self._lead() - now)
        else:
            waits = [s.due for s in self.quick]
            # While a background run is going, look again soon to see it overrun.
            waits += [time.monotonic() + 1.0 for s in self.samplers
                      if s.running_since is not None]
        if not waits:
            return None
        return max(0.0, min(waits) - time.monotonic())

    def timeouts(self) -> Dict[str, int]:
        """Runs given up on, per collector."""
        out = dict(self._deadline.timeouts) if self._deadline is not None else {}
        for name, count in self._given_up.items():
            out[name] = out.get(name, 0) + count
        for s in self.samplers:
            out[s.collector.name] = out.get(s.collector.name, 0) + s.timeouts
        return out

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
                (s.collector, s.check()) for s in self.samplers]:
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
        timeouts = CounterMetricFamily(
            "board_collector_timeouts",
            "Collector runs given up on because a read blocked past the deadline.",
            labels=["collector"])
        given_up = self.timeouts()
        merged: Dict[str, Metric] = {}
        copied: Set[str] = set()
        for name, outcome, finished in sorted(results, key=lambda r: r[0]):
            if outcome.absent:
                continue
            _merge_into(merged, copied, outcome.families)
            if outcome.success:
                self.last_success[name] = finished
            success.add_metric([name], 1.0 if outcome.success else 0.0)
            duration.add_metric([name], outcome.duration)
            timeouts.add_metric([name], given_up.get(name, 0))
            if name in self.last_success:
                last_ok.add_metric([name], self.last_success[name])
            skipped.add_metric([name], skipped_by[name])
        yield from merged.values()
        yield success
        yield duration
        yield last_ok
        yield skipped
        yield timeouts


def _merge_into(merged: Dict[str, Metric], copied: Set[str], families: List[Metric]) -> None:
    """Add families, joining same-named ones from different collectors into one.

    Several collectors feed one contract metric (temperatures from thermal zones and
    hwmon, accelerator utilisation from BPU and GPU); the exposition needs one family.
    A family is served as it is; one that another joins is copied first (named in
    ``copied``): results are cached and served again next scrape.
    """
    for fam in families:
        have = merged.get(fam.name)
        if have is None:
            merged[fam.name] = fam
            continue
        if fam.name not in copied:
            have = copy.copy(have)
            have.samples = list(have.samples)
            merged[fam.name] = have
            copied.add(fam.name)
        have.samples.extend(fam.samples)
