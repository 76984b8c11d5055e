"""Metrics other tools write: ``*.prom`` files in a directory, like node_exporter's
textfile collector.

Off unless a directory is configured (``--collector.textfile.directory`` or
``[collectors.textfile] directory``; a path on this machine, not under ``--sysroot``).
Each file is read whole by the Prometheus text format's rules
(:mod:`~boardfleet_agent.parsers.promtext`) and re-read only when it changes. A file
that breaks them, or clashes with another file or with the agent's own ``board_`` and
``process_`` names, is left out alone: ``board_textfile_scrape_error`` is 1, its
failure is counted once in ``board_textfile_errors_total{file}`` and logged once.
"""

import os
import stat
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from boardfleet_agent.errors import NoData, ParseError
from boardfleet_agent.families import CounterMetricFamily, GaugeMetricFamily, Metric
from boardfleet_agent.log import log
from boardfleet_agent.parsers.promtext import Family, parse
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import MAX_FILE_BYTES, Source

RESERVED_PREFIXES = ("board_", "process_")  # the agent's own families
_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram",
          "summary": "summary", "untyped": "unknown"}
Version = Tuple[int, int, int, int]  # device, inode, size, mtime in ns


@register
class TextfileCollector(Collector):
    name = "textfile"
    agentless = False  # files on the agent's machine
    defaults = {"directory": ""}

    def __init__(self, settings: Mapping[str, Any], platform: str = "generic") -> None:
        super().__init__(settings, platform)
        # File name -> (version, families or the reason it was refused).
        self._parsed: Dict[str, Tuple[Version, Union[List[Family], str]]] = {}
        # File name -> (version, reason) of the failure last counted and logged.
        self._reported: Dict[str, Tuple[Version, str]] = {}
        self.errors: Dict[str, int] = {}

    def collect(self, src: Source) -> Iterator[Metric]:
        directory = self.settings["directory"]
        if not directory:
            raise NoData("no textfile directory configured")
        failed = GaugeMetricFamily(
            "board_textfile_scrape_error",
            "1 if a *.prom file or the directory could not be read or was refused.")
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith(".prom"))
        except OSError as e:
            failed.add_metric([], 1.0)
            yield failed
            raise OSError(e.errno, "textfile directory: %s" % e.strerror, directory) from None
        merged: Dict[str, Tuple[Metric, str]] = {}
        series: Series = {}
        mtime = GaugeMetricFamily("board_textfile_mtime_seconds",
                                  "Modification time of each *.prom file read.",
                                  labels=["file"])
        bad = False
        for fname in names:
            version, result = self._read(os.path.join(directory, fname), fname)
            if not isinstance(result, str):
                result = _merge(fname, result, merged, series) or result
            if isinstance(result, str):
                bad = True
                self._report(fname, version, result)
                continue
            self._reported.pop(fname, None)
            mtime.add_metric([fname], version[3] / 1e9)
        self._parsed = {n: v for n, v in self._parsed.items() if n in names}
        failed.add_metric([], 1.0 if bad else 0.0)
        yield from (m for m, _ in merged.values())
        yield mtime
        yield failed
        errors = CounterMetricFamily("board_textfile_errors",
                                     "*.prom files refused, once per version of the file.",
                                     labels=["file"])
        for fname, n in sorted(self.errors.items()):
            errors.add_metric([fname], n)
        yield errors

    def _read(self, path: str, fname: str) -> Tuple[Version, Union[List[Family], str]]:
        """The file's version and families (or why it was refused), parsed on change."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            return (0, 0, 0, 0), "cannot open: %s" % e.strerror
        try:
            st = os.fstat(fd)
            version = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self._parsed.get(fname)
            if cached is not None and cached[0] == version:
                return cached
            result = _parse_fd(fd, st)
        finally:
            os.close(fd)
        self._parsed[fname] = (version, result)
        return version, result

    def _report(self, fname: str, version: Version, reason: str) -> None:
        if self._reported.get(fname) == (version, reason):
            return
        self._reported[fname] = (version, reason)
        self.errors[fname] = self.errors.get(fname, 0) + 1
        log.warning("textfile %s left out: %s", fname, reason)


def _parse_fd(fd: int, st: os.stat_result) -> Union[List[Family], str]:
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size > MAX_FILE_BYTES:
        return "larger than %d bytes" % MAX_FILE_BYTES
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            if sum(map(len, chunks)) > MAX_FILE_BYTES:
                return "larger than %d bytes" % MAX_FILE_BYTES
        families = parse(b"".join(chunks).decode("utf-8"))
    except OSError as e:
        return "cannot read: %s" % (e.strerror or e)
    except UnicodeDecodeError as e:
        return "not UTF-8 (byte %d)" % e.start
    except ParseError as e:
        return str(e)
    for fam in families:
        if fam.name.startswith(RESERVED_PREFIXES):
            return "%s: names starting with %s are the agent's own" % (
                fam.name, " or ".join(RESERVED_PREFIXES))
    return families


Series = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], str]  # series -> its file


def _merge(fname: str, families: List[Family], merged: Dict[str, Tuple[Metric, str]],
           series: Series) -> Optional[str]:
    """Add a file's families to ``merged`` (name -> family, first file) unless they clash
    with earlier files' (another type, a series given twice): then why, and add nothing."""
    metrics = [_metric(f) for f in families]
    keys = []
    for m in metrics:
        have = merged.get(m.name)
        if have is not None and have[0].type != m.type:
            return "%s is a %s in %s" % (m.name, have[0].type, have[1])
        for s in m.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in series:
                return "series %s also in %s" % (s.name, series[key])
            keys.append(key)
    series.update((key, fname) for key in keys)
    for m in metrics:
        if m.name in merged:
            merged[m.name][0].samples.extend(m.samples)
        else:
            merged[m.name] = (m, fname)
    return None


def _metric(fam: Family) -> Metric:
    """The family as prometheus_client writes it: a counter is named without its
    ``_total``; a counter whose samples lack it cannot be written so, and is untyped."""
    kind = _TYPES[fam.type]
    name = fam.name
    if kind == "counter":
        if name.endswith("_total") and name != "_total":
            name = name[:-6]
        else:
            kind = "unknown"
    m = Metric(name, fam.help or "", kind)
    for s in fam.samples:
        m.add_sample(s.name, s.labels, s.value)
    return m
