"""A soak report: ask Prometheus about a window, give every board a verdict and reasons.

All boards go into each query (``board=~"a|b|..."``) and the answers are split by the
``board`` label, so a 200-board run costs the same dozen queries as one board. Range
queries use a step of the window / 1000 (at least 15 s): 72 h at about 4 min.
"""


import itertools
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Dict, List, TextIO, Tuple

from boardfleet.soak import evidence
from boardfleet.soak.criteria import Criteria, defaults
from boardfleet.soak.prom import Points, Prometheus, QueryError
from boardfleet.soak.store import SoakStore

MAX_POINTS = 1000
MIN_STEP = 15.0
ACCEL = "board_ion_process_bytes|board_dmabuf_process_bytes|board_mmz_process_bytes"
MIB = 2**20
AGENTLESS_JOB = "boardfleet-agentless"


@dataclass
class Window:
    name: str
    start: float
    end: float
    boards: List[str]
    meta: Dict[str, str] = field(default_factory=dict)
    store: SoakStore | None = None


@dataclass
class BoardReport:
    board: str
    verdict: str = "pass"
    reasons: List[str] = field(default_factory=list)
    figures: Dict[str, Any] = field(default_factory=dict)
    # Plot name -> series name -> points (not part of JSON).
    series: Dict[str, Dict[str, Points]] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.verdict = "fail"
        self.reasons.append(reason)


@dataclass
class Report:
    name: str
    start: float
    end: float
    step: float
    prometheus: str
    meta: Dict[str, str]
    criteria: Criteria
    boards: List[BoardReport]
    generated: float
    problems: List[str] = field(default_factory=list)


class _Queries:
    """Runs the report's queries over the window, with progress lines on ``out``."""

    def __init__(self, prom: Prometheus, w: Window, step: float, out: TextIO | None,
                 total: int) -> None:
        self.prom, self.w, self.step, self.out = prom, w, step, out
        self.sel = 'board=~"%s"' % "|".join(b.replace(".", "\\\\.") for b in w.boards)
        self.range_s = "%ds" % max(1, int(w.end - w.start))
        self.done, self.total = 0, total
        self.problems: List[str] = []

    def _progress(self, what: str) -> None:
        self.done += 1
        if self.out is not None:
            self.out.write("[%d/%d] %s\n" % (self.done, self.total, what))
            self.out.flush()

    def range(self, what: str, expr: str) -> List[Tuple[Dict[str, str], Points]]:
        self._progress(what)
        try:
            return self.prom.range(expr.replace("SEL", self.sel), self.w.start, self.w.end,
                                   self.step)
        except QueryError as e:
            self.problems.append("%s: %s" % (what, e))
            return []

    def instant(self, what: str, expr: str, at: float | None = None
                ) -> List[Tuple[Dict[str, str], float]]:
        self._progress(what)
        try:
            # RANGE first: board names go in last, so none of them is taken for a placeholder.
            return self.prom.instant(expr.replace("RANGE", self.range_s).replace(
                "SEL", self.sel), self.w.end if at is None else at)
        except QueryError as e:
            self.problems.append("%s: %s" % (what, e))
            return []


def default_step(start: float, end: float) -> float:
    return max(MIN_STEP, (end - start) / MAX_POINTS)


def build(w: Window, url: str, criteria: Criteria, step: float | None = None,
          progress: TextIO | None = None) -> Report:
    """Query Prometheus at ``url`` over ``w`` and judge every board."""
    step = step or default_step(w.start, w.end)
    prom = Prometheus(url)
    try:
        q = _Queries(prom, w, step, progress, total=17)
        boards = {b: BoardReport(b) for b in w.boards}
        _analyse(q, w, criteria, boards)
    finally:
        prom.close()
    return Report(w.name, w.start, w.end, step, url, dict(w.meta), criteria,
                  [boards[b] for b in sorted(boards)], time.time(), q.problems)


def unjudged(w: Window, url: str, why: str) -> Report:
    """A report that could not be made: every board fails with ``why`` (fail closed)."""
    boards = [BoardReport(b, "fail", [why]) for b in sorted(w.boards)]
    return Report(w.name, w.start, w.end, default_step(w.start, w.end), url, dict(w.meta),
                  defaults(), boards, time.time(), [why])


def _by(rows: List[Tuple[Dict[str, str], Any]], *keys: str) -> Dict[str, Dict[str, Any]]:
    """``{board: {"k1/k2": value}}`` from query rows."""
    out: Dict[str, Dict[str, Any]] = defaultdict(dict)
    for labels, value in rows:
        if "board" in labels:
            out[labels["board"]]["/".join(labels.get(k, "") for k in keys)] = value
    return out


def _analyse(q: _Queries, w: Window, c: Criteria, boards: Dict[str, BoardReport]) -> None:
    # Agentless boards: /probe answers (up = 1) even when the board did not; its own
    # board_probe_success says whether the board was read.
    up = _by(q.range("scrape completeness", 'max by (board) (up{SEL, job!="%s"}) or max by '
                     "(board) (board_probe_success{SEL})" % AGENTLESS_JOB))
    boot = _by(q.range("reboots", "max by (board) (board_boot_time_seconds{SEL})"))
    cpu = _by(q.range("app restart times", "sum by (board, process) "
                      "(board_process_cpu_seconds_total{SEL})"), "process")
    resets = _by(q.instant("app restarts", "sum by (board, process) "
                           "(resets(board_process_cpu_seconds_total{SEL}[RANGE]))"), "process")
    mmz = _by(q.range("MMZ free per zone", "sum by (board, zone) (board_mmz_free_bytes{SEL})"),
              "zone")
    mmz_min = _by(q.instant("MMZ minimum free", "min by (board, zone) "
                            "(min_over_time(board_mmz_free_bytes{SEL}[RANGE]))"), "zone")
    block_min = _by(q.instant("MMZ minimum largest free block", "min by (board, zone) "
                              "(min_over_time(board_mmz_largest_free_block_bytes{SEL}[RANGE]))"),
                    "zone")
    accel = _by(q.range("accelerator memory per process", 'sum by (board, process) '
                        '({__name__=~"%s", SEL})' % ACCEL), "process")
    ddr = _by(q.range("DDR utilisation", "max by (board) (board_ddr_utilization_ratio{SEL})"))
    util = _by(q.instant("accelerator utilisation", "avg by (board, accelerator) "
                         "(avg_over_time(board_accelerator_utilization_ratio{SEL}[RANGE]))"),
               "accelerator")
    temp = _by(q.instant("temperature peak", "max by (board, sensor) "
                         "(max_over_time(board_temperature_celsius{SEL}[RANGE]))"), "sensor")
    load = _by(q.instant("model load times", "max by (board, model, stage) "
                         "(max_over_time(board_model_load_seconds{SEL}[RANGE]))"),
               "model", "stage")
    lw = max(60.0, min(c.latency_window_seconds, (w.end - w.start) / 4))
    lat = {}
    for when, at in (("start", w.start + lw), ("end", w.end)):
        for qn in (0.5, 0.99):
            lat[(when, qn)] = _by(q.instant(
                "latency p%g at the %s" % (qn * 100, when),
                "histogram_quantile(%g, sum by (board, model, le) (rate("
                "board_inference_latency_seconds_bucket{SEL}[%ds])))" % (qn, lw), at), "model")
    lat_series = _by(q.range("latency p99 over the run", "histogram_quantile(0.99, sum by "
                             "(board, model, le) (rate(board_inference_latency_seconds_bucket"
                             "{SEL}[%ds])))" % max(300, 2 * q.step)), "model")
    alerts = w.store.alerts(w.start, w.end, w.boards) if w.store else []
    for name, br in boards.items():
        ups = up.get(name, {}).get("", [])
        has_any = any(name in d for d in (boot, mmz, ddr, accel, temp, lat_series))
        if not ups and not has_any:
            br.fail("no data from Prometheus in the window (is the board scraped?)")
            continue
        if ups:
            _scrapes(br, ups, w, q.step, c)
        reboot_at = _reboots(br, boot.get(name, {}).get("", []), w, c)
        restarts = _restarts(br, cpu.get(name, {}), resets.get(name, {}), reboot_at, q.step)
        _mmz(br, mmz.get(name, {}), mmz_min.get(name, {}), block_min.get(name, {}),
             reboot_at, restarts, c)
        _accel(br, accel.get(name, {}), c)
        _ddr(br, ddr.get(name, {}).get("", []), c)
        br.figures["accelerator_utilization_avg"] = util.get(name, {})
        _temperature(br, temp.get(name, {}), c)
        _latency(br, {k: v.get(name, {}) for k, v in lat.items()}, lat_series.get(name, {}), c)
        br.figures["model_load_seconds_max"] = load.get(name, {})
        _alerts(br, [a for a in alerts if a.board == name], w, c)


def _scrapes(br: BoardReport, ups: Points, w: Window, step: float, c: Criteria) -> None:
    share, gaps = evidence.gaps(ups, w.start, w.end, step, c.gap_min_seconds)
    br.figures["scrape_completeness"] = round(share, 4)
    br.figures["scrape_gaps"] = [{"from": a, "to": b, "seconds": b - a} for a, b in gaps]
    if share < c.scrape_completeness_min:
        longest = max(gaps, key=lambda g: g[1] - g[0], default=None)
        br.fail("scraped %s of the run (%d gaps%s)" % (
            _pct(share), len(gaps), ", longest %s from %s" % (
                _dur(longest[1] - longest[0]), _clock(longest[0])) if longest else ""))


def _reboots(br: BoardReport, boot: Points, w: Window, c: Criteria) -> List[float]:
    at = evidence.reboots(boot, w.start)
    br.figures["reboots"] = at
    if len(at) > c.reboots_max:
        br.fail("rebooted at %s" % ", ".join(_clock(t) for t in at))
    return at


def _restarts(br: BoardReport, cpu: Dict[str, Points], counts: Dict[str, float],
              reboot_at: List[float], step: float) -> List[float]:
    """App restarts: resets of a process' CPU-time counter, except those of a reboot.

    The count is exact (``resets()`` over the window); the times, used to split MMZ
    losses per restart, are the steps where the counter drops.
    """
    times: List[float] = []
    per_process: Dict[str, int] = {}
    for process in sorted(set(cpu) | set(counts)):
        pts = cpu.get(process, [])
        drops = [t1 for (_, v0), (t1, v1) in itertools.pairwise(pts) if v1 < v0]
        by_reboot = [t for t in drops if any(abs(t - r) <= 2 * step for r in reboot_at)]
        n = int(counts.get(process, len(drops))) - len(by_reboot)
        per_process[process] = max(0, n)
        times.extend(t for t in drops if t not in by_reboot)
    br.figures["app_restarts"] = per_process
    return sorted(set(times))


def _mmz(br: BoardReport, free: Dict[str, Points], minimum: Dict[str, float],
         block: Dict[str, float], reboot_at: List[float], restarts: List[float],
         c: Criteria) -> None:
    zones = {}
    for zone, points in sorted(free.items()):
        worst = None
        for seg in evidence.segments(points, reboot_at):
            loss = evidence.level(seg, True) - evidence.level(seg, False)
            n = sum(1 for t in restarts if seg[0][0] < t <= seg[-1][0])
            f = evidence.fit(seg)
            if worst is None or loss > worst[0]:
                worst = (loss, n, f, seg[-1][0] - seg[0][0])
        z: Dict[str, Any] = {"min_free_bytes": minimum.get(zone),
                             "min_largest_free_block_bytes": block.get(zone)}
        if worst:
            loss, n, f, span = worst
            z.update(loss_bytes=loss, restarts=n,
                     slope_bytes_per_hour=f.slope_per_hour if f else None,
                     r2=round(f.r2, 3) if f else None)
            if loss > c.mmz_loss_bytes_max:
                if n:
                    br.fail("MMZ zone %s lost %s per app restart, %d restarts"
                            % (zone, _mib(loss / n), n))
                else:
                    br.fail("MMZ zone %s free fell by %s over %s (%s/h, R² %.2f)"
                            % (zone, _mib(loss), _dur(span), _mib(-f.slope_per_hour if f
                                                                   else 0), f.r2 if f else 0))
        zones[zone] = z
    br.figures["mmz"] = zones
    if free:
        br.series["MMZ free per zone (MiB)"] = {
            z: [(t, v / MIB) for t, v in p] for z, p in free.items()}


def _accel(br: BoardReport, per_process: Dict[str, Points], c: Criteria) -> None:
    out = {}
    for process, points in sorted(per_process.items()):
        f = evidence.fit(points)
        out[process] = {"max_bytes": max(v for _, v in points),
                        "slope_bytes_per_hour": f.slope_per_hour if f else None,
                        "r2": round(f.r2, 3) if f else None}
        if f and f.slope_per_hour > c.leak_bytes_per_hour_max and f.r2 >= c.leak_r2_min:
            br.fail("process %s accelerator memory grew %s/h (R² %.2f)"
                    % (process, _mib(f.slope_per_hour), f.r2))
    br.figures["accelerator_memory"] = out
    if per_process:
        br.series["Accelerator memory per process (MiB)"] = {
            p: [(t, v / MIB) for t, v in pts] for p, pts in per_process.items()}


def _ddr(br: BoardReport, points: Points, c: Criteria) -> None:
    if not points:
        return
    bound = c.ddr_ratio
    if bound is None:  # criteria without a thresholds file: fail closed
        br.fail("DDR not judged: no DDR bound (prometheus/thresholds.yml) in the criteria")
        return
    share = evidence.share_above(points, bound)
    peak = max(v for _, v in points)
    br.figures["ddr"] = {"peak_ratio": peak, "share_above": round(share, 4),
                         "bound_ratio": bound}
    if share > c.ddr_above_share_max:
        br.fail("DDR above %s for %s of the run (peak %s)"
                % (_pct(bound), _pct(share), _pct(peak)))
    br.series["DDR utilisation (%)"] = {"ddr": [(t, v * 100) for t, v in points]}


def _temperature(br: BoardReport, peaks: Dict[str, float], c: Criteria) -> None:
    br.figures["temperature_peak_celsius"] = peaks
    for sensor, value in sorted(peaks.items()):
        if value > c.temperature_celsius_max:
            br.fail("temperature %s peaked at %.0f °C" % (sensor, value))


def _latency(br: BoardReport, q: Dict[Tuple[str, float], Dict[str, float]],
             series: Dict[str, Points], c: Criteria) -> None:
    models = sorted({m for d in q.values() for m in d})
    out = {}
    for m in models:
        f = {"%s_p%d" % (when, int(qn * 100)): _finite(d.get(m))
             for (when, qn), d in q.items()}
        p99a, p99b = f.get("start_p99"), f.get("end_p99")
        f["p99_drift"] = None
        out[m] = f
        if not (p99a and p99b):
            continue
        f["p99_drift"] = p99b / p99a
        if p99b / p99a > c.latency_p99_drift_max and p99b >= c.latency_min_seconds:
            br.fail("p99 of %s rose from %s to %s" % (m, _ms(p99a), _ms(p99b)))
    br.figures["latency"] = out
    if series:
        br.series["Latency p99 per model (ms)"] = {
            m: [(t, v * 1000) for t, v in pts if v == v] for m, pts in series.items()}


def _alerts(br: BoardReport, alerts: list, w: Window, c: Criteria) -> None:
    out = []
    for a in alerts:
        d = a.duration(w.end)
        out.append({"alertname": a.alertname, "severity": a.severity, "starts_at": a.starts_at,
                    "ends_at": a.ends_at, "seconds": d, "summary": a.summary})
        if a.severity in c.fail_on_alert_severities:
            br.fail("alert %s (%s) fired at %s for %s" % (a.alertname, a.severity,
                                                        _clock(a.starts_at), _dur(d)))
    br.figures["alerts"] = out


def _finite(v: float | None) -> float | None:
    return v if v is not None and v == v and abs(v) != float("inf") else None


def _pct(r: float) -> str:
    return "%.0f %%" % (r * 100) if r * 100 >= 1 or r == 0 else "%.1f %%" % (r * 100)


def _mib(b: float) -> str:
    return "%.0f MiB" % (b / MIB) if abs(b) >= 10 * MIB else "%.1f MiB" % (b / MIB)


def _ms(s: float) -> str:
    return "%.0f ms" % (s * 1000) if s >= 0.01 else "%.1f ms" % (s * 1000)


def _dur(seconds: float) -> str:
    if seconds < 3600:
        return "%d min" % round(seconds / 60)
    return "%.1f h" % (seconds / 3600)


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def render(report: Report, fmt: str) -> str:
    from boardfleet.soak import render as r

    return {"json": r.to_json, "junit": r.to_junit, "markdown": r.to_markdown,
            "html": r.to_html}[fmt](report)


