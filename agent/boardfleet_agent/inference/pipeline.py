"""Inference telemetry: StatsD intake, log tails and model loads, as one custom collector.

Settings come from the config file's ``[statsd]``, ``[inference]`` and ``[logtail]``
tables (see docs/inference.md)::

    [statsd]
    listen = "127.0.0.1:8125"      # "off" disables the UDP intake
    max_packet_bytes = 8192

    [inference]
    tags = ["backend"]             # DogStatsD tags kept as labels besides model
    max_models = 50
    max_series = 500
    max_series_per_model = 50      # one model's tag values cannot take all the series

    [logtail]
    poll_interval = 0.5
    [logtail.yolo]
    path = "/var/log/yolo_perf.log"
    model = "yolov8"               # default: the table name
    pattern = "hrt_model_exec"     # built-in name, or a regex with named groups
"""

import threading
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from boardfleet_agent.config import ConfigError
from boardfleet_agent.families import CounterMetricFamily, Metric
from boardfleet_agent.inference import DEFAULT_STATSD_LISTEN, settings_of, tags_of
from boardfleet_agent.inference.intake import UdpIntake
from boardfleet_agent.inference.latency import LatencyHistograms
from boardfleet_agent.inference.logtail import FileFollower, LogPattern, LogStats, LogTailer
from boardfleet_agent.inference.modelload import ModelLoads
from boardfleet_agent.inference.statsd import (
    LABEL_VALUE,
    MAX_PACKET_BYTES,
    REASONS,
    line_shape,
    parse_line,
    parse_value,
    split_datagram,
)
from boardfleet_agent.procs import PidMemory
from boardfleet_agent.source import Source
from boardfleet_agent.web.listen import parse_listen

LOAD_BEGIN = "model_load_begin"
LOAD_END = "model_load"
MAX_PID = 1 << 22
MAX_ROUTES = 4096  # cached line shapes (see Inference.handle)


class Inference:
    """Owns the intake thread and tailers; a prometheus_client custom collector."""

    def __init__(self, sections: Mapping[str, Mapping[str, Any]], src: Source) -> None:
        # What this intake was built from: a reload with the same tables keeps it, and
        # with it the histograms, the load records and the socket.
        self.settings = settings_of(sections)
        statsd = sections.get("statsd", {})
        inference = sections.get("inference", {})
        listen = _get(statsd, "statsd", "listen", str, DEFAULT_STATSD_LISTEN)
        self.max_packet = _get(statsd, "statsd", "max_packet_bytes", int, MAX_PACKET_BYTES)
        self.tags = tags_of(sections)
        max_models = _get(inference, "inference", "max_models", int, 50)
        max_series = _get(inference, "inference", "max_series", int, 500)
        self.histograms = LatencyHistograms(
            self.tags, max_models, max_series,
            _get(inference, "inference", "max_series_per_model", int, min(50, max_series)))
        # Filled by the memory collectors (Agent hands it to them); never read here.
        self.memory = PidMemory()
        self.loads = ModelLoads(self.memory, lambda pid: src.exists("/proc/%d" % pid),
                                max_models)
        self.memory.listen(self.loads.resolve)
        self.logstats = LogStats()
        self.tailer = _tailer(sections.get("logtail", {}), self.logstats)
        self.rejected = dict.fromkeys(REASONS, 0)
        self._routes: Dict[str, Tuple[Tuple[str, ...], float]] = {}
        self._heard = False
        self._started = False
        self._lock = threading.Lock()
        self.intake: Optional[UdpIntake] = None
        if listen != "off":
            try:
                self.intake = UdpIntake(parse_listen(listen), self.handle)
            except ValueError as e:
                raise ConfigError("statsd listen: %s" % e) from None

    def start(self) -> None:
        """Start the intake and tailers (again on a kept intake: then nothing happens)."""
        if self._started:
            return
        self._started = True
        if self.intake is not None:
            self.intake.start()
        self.tailer.start()

    def stop(self) -> None:
        if self.intake is not None:
            self.intake.stop()
        self.tailer.stop()

    def handle(self, data: bytes) -> None:
        """Account for one datagram (the hot path).

        Lines differing only in their value share a shape; the labels and weight of an
        accepted timing are cached by shape, so a repeated line costs a dict lookup and
        a float parse.
        """
        lines = split_datagram(data, self.max_packet)
        rejects = [lines] if isinstance(lines, str) else []
        routes = self._routes
        for line in lines if not rejects else ():
            shape, text = line_shape(line)
            route = routes.get(shape)
            if route is None:
                reason = self._slow(line, shape)
            else:
                value = parse_value(text, "ms")
                reason = value if isinstance(value, str) else self.histograms.observe(
                    route[0], value / 1000.0, route[1])
            if reason:
                rejects.append(reason)
        self._heard = True
        if rejects:
            with self._lock:
                for r in rejects:
                    self.rejected[r] += 1

    def _slow(self, line: str, shape: str) -> Optional[str]:
        s = parse_line(line)
        if isinstance(s, str):
            return s
        if s.name in (LOAD_BEGIN, LOAD_END):
            return self._load(s.name, s.tags, s.value / 1000.0)
        if s.type != "ms":
            return "unknown_type"
        model = s.tags.get("model", s.name)
        labels = (model, *(s.tags.get(t, "") for t in self.tags))
        if not all(v == "" or LABEL_VALUE.match(v) for v in labels) or not model:
            return "bad_label"
        reason = self.histograms.observe(labels, s.value / 1000.0, 1.0 / s.rate)
        if reason is None:
            if len(self._routes) >= MAX_ROUTES:
                self._routes.clear()
            self._routes[shape] = (labels, 1.0 / s.rate)
        return reason

    def _load(self, name: str, tags: Dict[str, str], seconds: float) -> Optional[str]:
        model, stage, pid_text = tags.get("model", ""), tags.get("stage", ""), tags.get("pid")
        pid = (int(pid_text) if pid_text and pid_text.isascii() and pid_text.isdigit()
               and len(pid_text) < 8 else None)
        if not LABEL_VALUE.match(model) or (pid_text is not None and
                                            (pid is None or not 0 < pid < MAX_PID)):
            return "bad_label"
        if name == LOAD_BEGIN:
            return self.loads.begin(model, stage, pid)
        return self.loads.end(model, stage, pid, seconds)

    def describe(self) -> List[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        fam = self.histograms.family()
        if fam.samples:
            yield fam
        yield from self.loads.collect()
        yield from self.logstats.collect()
        with self._lock:
            rejected = sorted(self.rejected.items())
        if self._heard:
            counter = CounterMetricFamily(
                "board_inference_rejected_total",
                "StatsD lines or packets dropped by the inference intake, by reason.",
                labels=["reason"])
            for reason, n in rejected:
                counter.add_metric([reason], n)
            yield counter
        drops = self.intake.kernel_drops() if self.intake is not None else None
        if drops is not None:
            yield CounterMetricFamily(
                "board_inference_dropped_datagrams",
                "StatsD datagrams the kernel dropped because the agent's receive buffer "
                "was full (the socket's drops in /proc/net/udp).", value=drops)


def _get(table: Mapping[str, Any], where: str, key: str, kind: Any, default: Any) -> Any:
    """``table[key]`` checked against ``kind`` (numbers must be positive)."""
    value = table.get(key, default)
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind) or (
            kind is list and not all(isinstance(v, str) for v in value)):
        raise ConfigError("%s.%s has the wrong type" % (where, key))
    if kind in (int, (int, float)) and value <= 0:
        raise ConfigError("%s.%s must be positive" % (where, key))
    if kind is str and not value:
        raise ConfigError("%s.%s must not be empty" % (where, key))
    return value


def _tailer(table: Mapping[str, Any], stats: LogStats) -> LogTailer:
    interval = float(_get(table, "logtail", "poll_interval", (int, float), 0.5))
    files: List[Tuple[FileFollower, LogPattern, str]] = []
    for name, spec in sorted(table.items()):
        if not isinstance(spec, dict):
            continue
        where = "logtail." + name
        model = _get(spec, where, "model", str, name)
        if not LABEL_VALUE.match(model):
            raise ConfigError("%s.model: %r is not a valid label value" % (where, model))
        try:
            pattern = LogPattern.named_or_regex(
                _get(spec, where, "pattern", str, "hrt_model_exec"))
        except Exception as e:
            raise ConfigError("%s.pattern: %s" % (where, e)) from None
        follower = FileFollower(_get(spec, where, "path", str, ""),
                                _get(spec, where, "from_start", bool, False))
        files.append((follower, pattern, model))
    return LogTailer(files, stats, max(0.05, interval))
