"""Recorded soak histories: 72 h of board series per scenario, as OpenMetrics for
``promtool tsdb create-blocks-from openmetrics``, served by a real Prometheus.

Scenarios (one board each, named ``soak-<scenario>``):

* ``healthy``: flat figures; the app restarts every 10 h and gets all its MMZ back
* ``mmz-leak``: each of the 6 app restarts loses 24 MiB of MMZ zone ``anonymous``
* ``reboot``: the board reboots on the second day at 03:12 UTC (down 4 min)
* ``slow-leak``: process ``infer_app`` grows its ION memory by 2 MiB/h (Horizon, no MMZ)
* ``ddr-duty``: DDR at 55 % for 12 minutes of every hour, 25 % otherwise
* ``latency-drift``: yolov8 p99 rises steadily from 12 ms to 31 ms
* ``gaps``: three 2-hour scrape gaps
"""

import itertools
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, TextIO, Tuple

from support.net import free_port
from support.prom import Prometheus, _running
from support.promtool import promtool

HOURS = 72
INTERVAL = 120
MIB = 2**20
SCENARIOS = ("healthy", "mmz-leak", "reboot", "slow-leak", "ddr-duty", "latency-drift", "gaps")
RESTART_EVERY = 10 * 3600
REBOOT_AT = 27 * 3600 + 12 * 60          # from a midnight start: day 2, 03:12
# 2 ms buckets up to 40 ms: histogram_quantile is then within a millisecond of the truth.
BUCKETS = (*(i / 1000 for i in range(2, 41, 2)), 0.05, 0.1)
RATE = 50.0                               # inferences per second


def window(now: float) -> Tuple[float, float]:
    """72 h ending at the last midnight UTC, so reboot times read as clock times."""
    end = float(int(now) // 86400 * 86400)
    return end - HOURS * 3600, end


class Board:
    """The state of one simulated board at sample time ``t`` (seconds since start)."""

    def __init__(self, scenario: str, start: float) -> None:
        self.name = "soak-" + scenario
        self.s = scenario
        self.start = start

    def scraped(self, t: float) -> bool:
        if self.s == "reboot" and REBOOT_AT <= t < REBOOT_AT + 240:
            return False
        return not (self.s == "gaps" and any(h * 3600 <= t < (h + 2) * 3600
                                             for h in (8, 30, 55)))

    def restarts_before(self, t: float) -> int:
        if self.s in ("slow-leak", "latency-drift", "ddr-duty", "gaps"):
            return 0
        return min(6, int(t // RESTART_EVERY))

    def boot_time(self, t: float) -> float:
        if self.s == "reboot" and t >= REBOOT_AT:
            return self.start + REBOOT_AT + 30
        return self.start - 5 * 86400

    def app_started(self, t: float) -> float:
        """Start of the app's current life (restart or reboot)."""
        last = self.restarts_before(t) * RESTART_EVERY
        if self.s == "reboot" and t >= REBOOT_AT:
            last = max(last, REBOOT_AT + 240)
        return last

    def series(self, t: float) -> Dict[str, List[Tuple[str, float]]]:
        out: Dict[str, List[Tuple[str, float]]] = {}
        out["up"] = [('job="boardfleet-agent"', 1.0)]
        out["board_boot_time_seconds"] = [("", self.boot_time(t))]
        out["board_process_cpu_seconds_total"] = [('process="infer_app"',
                                                   0.5 * (t - self.app_started(t)))]
        if self.s != "slow-leak":
            restarting = t - self.app_started(t) < INTERVAL and self.app_started(t) > 0
            leaked = 24 * MIB * self.restarts_before(t) if self.s == "mmz-leak" else 0
            free = 256 * MIB - leaked - (0 if restarting else 100 * MIB)
            zone = 'zone="anonymous"'
            out["board_mmz_size_bytes"] = [(zone, 256.0 * MIB)]
            out["board_mmz_free_bytes"] = [(zone, float(free))]
            out["board_mmz_largest_free_block_bytes"] = [(zone, float(int(free * 0.6)))]
        ion = 80 * MIB + (2 * MIB * t / 3600 if self.s == "slow-leak" else 0)
        out["board_ion_process_bytes"] = [('heap="ion_system",process="infer_app"', ion)]
        duty = self.s == "ddr-duty" and (t % 3600) < 720
        ddr = 0.55 if duty else 0.25 + 0.02 * ((t // INTERVAL) % 3)
        out["board_ddr_utilization_ratio"] = [('controller="ddr0",source="hiddrs"', ddr)]
        out["board_accelerator_utilization_ratio"] = [('accelerator="nnie",core="0"', 0.6)]
        out["board_temperature_celsius"] = [('sensor="cpu",zone="thermal_zone0"', 61.0)]
        out["board_model_load_seconds"] = [('model="yolov8",stage="first"', 1.8)]
        return out

    def latency(self, t: float) -> Tuple[float, float]:
        """(p50, p99) of yolov8 at ``t``."""
        frac = t / (HOURS * 3600) if self.s == "latency-drift" else 0.0
        return 0.008 + 0.006 * frac, 0.012 + 0.019 * frac


def _cdf(le: float, p50: float, p99: float) -> float:
    """A piecewise-linear distribution through (0, 0), (p50, .5), (p99, .99), (1.5 p99, 1)."""
    points = ((0.0, 0.0), (p50, 0.5), (p99, 0.99), (1.5 * p99, 1.0))
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if le <= x1:
            return y0 + (y1 - y0) * (max(le, x0) - x0) / (x1 - x0)
    return 1.0


def write_openmetrics(out: TextIO, scenarios=SCENARIOS, start: float = 0.0,
                      hours: int = HOURS, interval: int = INTERVAL,
                      prefix: str = "") -> None:
    """Every scenario board's series, family by family (OpenMetrics needs that)."""
    boards = [Board(s, start) for s in scenarios]
    if prefix:  # many boards per scenario (benchmarks): number them
        for i, b in enumerate(boards):
            b.name = "%s%03d-%s" % (prefix, i, b.s)
    times = [i * interval for i in range(hours * 3600 // interval + 1)]
    families: Dict[str, Dict[Tuple[str, str], List[Tuple[float, float]]]] = {}
    for b in boards:
        for t in times:
            if not b.scraped(t):
                continue
            for fam, rows in b.series(t).items():
                for labels, v in rows:
                    families.setdefault(fam, {}).setdefault((b.name, labels), []).append(
                        (start + t, v))
    for fam, series in families.items():
        kind = "counter" if fam.endswith("_total") else "gauge"
        name = fam[:-len("_total")] if kind == "counter" else fam
        out.write("# TYPE %s %s\n" % (name, kind))
        for (board, labels), points in series.items():
            lab = 'board="%s"%s' % (board, "," + labels if labels else "")
            for ts, v in points:
                out.write("%s{%s} %r %d\n" % (fam, lab, v, ts))
    out.write("# TYPE board_inference_latency_seconds histogram\n")
    for b in boards:
        acc = [0.0] * (len(BUCKETS) + 1)
        total = 0.0
        rows: Dict[str, List[str]] = {}
        for t in times:
            n = RATE * interval
            p50, p99 = b.latency(t)
            for i, le in enumerate(BUCKETS):
                acc[i] += n * _cdf(le, p50, p99)
            acc[-1] += n
            total += n * p50
            if not b.scraped(t):
                continue
            base = 'board="%s",model="yolov8"' % b.name
            for le, v in zip([*BUCKETS, "+Inf"], acc, strict=True):
                rows.setdefault(str(le), []).append(
                    'board_inference_latency_seconds_bucket{%s,le="%s"} %d %d\n'
                    % (base, le, round(v), start + t))
            rows.setdefault("count", []).append("board_inference_latency_seconds_count{%s} %d %d\n"
                                                % (base, round(acc[-1]), start + t))
            rows.setdefault("sum", []).append("board_inference_latency_seconds_sum{%s} %r %d\n"
                                              % (base, total, start + t))
        for lines in rows.values():
            out.writelines(lines)
    out.write("# EOF\n")


def backfill(directory: Path, start: float, **kw) -> Path:
    """Write the OpenMetrics file and build TSDB blocks from it under ``directory/data``."""
    om = directory / "history.om"
    with open(om, "w") as f:
        write_openmetrics(f, start=start, **kw)
    data = directory / "data"
    r = subprocess.run([promtool(), "tsdb", "create-blocks-from", "openmetrics", str(om),
                        str(data)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError("promtool backfill failed: %s" % (r.stderr or r.stdout)[-2000:])
    om.unlink()
    return data


@contextmanager
def serve(directory: Path, *args: str) -> Iterator[Prometheus]:
    """Debian's Prometheus on a free loopback port over the backfilled ``directory/data``."""
    (directory / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    cmd = ["/usr/bin/prometheus", "--config.file", str(directory / "prometheus.yml"),
           "--storage.tsdb.path", str(directory / "data"), "--storage.tsdb.retention.time",
           "30d", "--web.listen-address", "127.0.0.1:%d" % port, *args]
    with _running(cmd, directory, url) as proc:
        yield Prometheus(url, directory, proc)
