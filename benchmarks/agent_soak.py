"""Soak the board agent: /metrics at 10 Hz for 30 min under StatsD load and changing files.

Starts ``boardfleet-agent`` on a temporary copy of a fixture board (background
collectors every 2 s, so vendor tools such as ``hiddrs`` run every 2 s) and,
all at once: scrapes ``/metrics`` over one persistent HTTP/1.1 connection, checking
every answer is 200 and a complete exposition; sends StatsD timings for several models
(plus malformed lines, new models past the cap and model-load events) from another
process; rewrites the sysroot's counters, temperatures, meminfo and vendor tables every
100 ms, by atomic rename and in place, and appends to an app log the agent tails, rotating
it by rename and by truncation. The agent's RSS, open fds and threads come from
``/proc/<pid>``. Progress lines while it runs; at the end a table, the least-squares
slopes after the warm-up and a verdict. The harness is tests/support/soak.py, shared
with the short version in the suite (tests/agent/test_soak.py)::

    python3 benchmarks/agent_soak.py [--duration 1800] [--board hi3516ev200]

RSS settles during the first minutes (allocator high-water marks, as file, datagram and
exposition sizes vary), so a sixth of the run (5 of 30 min) is left out as warm-up. The
slopes are fitted to steady values per 10 s after it: median RSS; fewest fds and threads,
since a tool run or a scrape holds a pipe, socket or thread only for a moment.
Thresholds:

* RSS: at most 128 KiB/hour, i.e. under 4 bytes per scrape at 10 Hz. Over the 25 fitted
  minutes that is ~50 KiB, well clear of a flat agent, whose steady RSS still moves by
  a 4 KiB page or two after the warm-up. A leak grows RSS all along, so the slope over
  the second half alone must exceed it too: a one-off step is not a leak (seen once:
  +250 KiB at minute 16 while other tests loaded the machine, flat before and after).
  128 KiB/h is not a budget for a week on the smallest board (Hi3516EV200: 64 MB,
  ~38 MB for Linux; it is 21 MiB a week): rule out slower leaks with a longer run
  (--duration 14400 resolves ~16 KiB/h).
* fds and threads: no growth at all. The steady counts of the first and the last
  minute after the warm-up must be equal, and the fd slope below 1 per hour (one fd
  leaked per hour exhausts a 1024-fd limit in six weeks).

Exit status: 0 flat, 1 not flat, 2 the agent died or answered badly (or bad arguments).
"""

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.paths import BOARDS
from support.soak import (
    ProcSample,
    Soak,
    SoakResult,
    Steady,
    slope,
    steady_series,
)

RSS_KIB_PER_HOUR = 128.0
FDS_PER_HOUR = 1.0
BUCKET = 10.0  # seconds of samples per steady value in the slopes
EDGE = 60.0  # seconds after the warm-up and before the end compared directly


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def progress_line(res: SoakResult, since: int) -> str:
    s = res.samples[-1] if res.samples else None
    lat = res.latencies[since:]
    return ("%6.0f s  scrapes %6d  errors %d  RSS %s KiB  fds %s  threads %s  "
            "scrape p50 %.1f ms p99 %.1f ms" % (
                s.t if s else 0, res.scrapes, len(res.errors), s.rss_kib if s else "-",
                s.fds if s else "-", s.threads if s else "-",
                percentile(lat, 0.5) * 1e3, percentile(lat, 0.99) * 1e3))


def table(samples: List[ProcSample], rows: int = 10) -> None:
    end = samples[-1].t
    print("%10s %8s %10s %10s %8s" % ("minute", "scrapes", "RSS KiB", "fds", "threads"))
    for i in range(rows):
        w = [s for s in samples if end * i / rows <= s.t < end * (i + 1) / rows] or samples[-1:]
        print("%4.1f-%4.1f %8d %10.0f %5d-%-4d %4d-%-3d" % (
            end * i / rows / 60, end * (i + 1) / rows / 60, w[-1].scrapes,
            statistics.median(s.rss_kib for s in w), min(s.fds for s in w),
            max(s.fds for s in w), min(s.threads for s in w), max(s.threads for s in w)))


def verdict(res: SoakResult, warmup: float) -> bool:
    """Print slopes and the verdict; True if RSS, fds and threads stayed flat."""
    series = steady_series(res.samples, warmup, BUCKET)
    hours = [(t / 3600, st) for t, st in series]
    rss = slope([(h, st.rss_kib) for h, st in hours])
    rss_late = slope([(h, st.rss_kib) for h, st in hours[len(hours) // 2:]])
    fds = slope([(h, float(st.fds)) for h, st in hours])
    threads = slope([(h, float(st.threads)) for h, st in hours])
    end = res.samples[-1].t
    edge = min(EDGE, (end - warmup) / 3)
    first = Steady.of(res.window(warmup, warmup + edge))
    last = Steady.of(res.window(end - edge, end + 1))
    print("steady over the first and last %.0f s after the %.0f s warm-up: RSS %.0f -> %.0f "
          "KiB, fds %d -> %d, threads %d -> %d" % (edge, warmup, first.rss_kib, last.rss_kib,
                                                   first.fds, last.fds, first.threads,
                                                   last.threads))
    print("slope: RSS %+.1f KiB/hour (second half %+.1f), fds %+.2f /hour, threads %+.2f /hour"
          % (rss, rss_late, fds, threads))
    checks = [
        ("RSS slope <= %.0f KiB/hour (all or 2nd half)" % RSS_KIB_PER_HOUR,
         min(rss, rss_late) <= RSS_KIB_PER_HOUR),
        ("fd slope < %.0f /hour" % FDS_PER_HOUR, fds < FDS_PER_HOUR),
        ("fds at the end == after warm-up", last.fds == first.fds),
        ("threads at the end <= after warm-up", last.threads <= first.threads),
    ]
    for name, ok in checks:
        print("  %-46s %s" % (name, "ok" if ok else "FAILED"))
    return all(ok for _, ok in checks)


def report(res: SoakResult, duration: float) -> None:
    print("scrapes: %d (%.1f/s), connections %d (stale keep-alive retries %d), "
          "scrape p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
              res.scrapes, res.scrapes / duration, res.connects, res.stale_retries,
              percentile(res.latencies, 0.5) * 1e3, percentile(res.latencies, 0.99) * 1e3,
              max(res.latencies, default=0) * 1e3))
    if res.agent_exit is None and res.statsd_sent:
        print("statsd: %d stable-model timings sent, %d counted (%.2f %% lost)" % (
            res.statsd_sent, res.statsd_counted,
            100.0 * (1 - res.statsd_counted / res.statsd_sent)))
    print("files: %d rewrites; %d scrapes (%.2f %%) had a collector failing or absent "
          "(a file read mid-rewrite); agent log: %d warnings, %d tracebacks" % (
              res.file_writes, res.collector_failures,
              100.0 * res.collector_failures / max(1, res.scrapes),
              res.log.count(" WARNING "), res.log.count("Traceback")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=1800.0,
                    help="seconds to scrape (default 1800: 30 min)")
    ap.add_argument("--warmup", type=float,
                    help="seconds left out of the slopes (default: a sixth of --duration, "
                         "at least 30)")
    ap.add_argument("--board", default="hi3516ev200", choices=BOARDS,
                    help="fixture board under tests/fixtures (default hi3516ev200: MMZ, "
                         "umap and the hiddrs tool)")
    ap.add_argument("--rate", type=float, default=10.0, help="scrapes per second (default 10)")
    ap.add_argument("--statsd-rate", type=float, default=3000.0,
                    help="StatsD datagrams per second (default 3000; 0 disables)")
    ap.add_argument("--churn-period", type=float, default=0.1,
                    help="seconds between rewrites of the sysroot files (default 0.1)")
    ap.add_argument("--sample-every", type=float, default=0.5,
                    help="seconds between RSS/fd/thread samples (default 0.5)")
    ap.add_argument("--progress", type=float, default=60.0,
                    help="seconds between progress lines (default 60)")
    args = ap.parse_args()
    warmup = args.warmup if args.warmup is not None else max(30.0, args.duration / 6)
    if args.duration < warmup + 3 * BUCKET:
        ap.error("--duration must leave at least %.0f s after the %.0f s warm-up for the "
                 "slopes" % (3 * BUCKET, warmup))
    print("board %s, %.0f s at %g scrapes/s, StatsD %g datagrams/s, files every %g s, "
          "warm-up %.0f s" % (args.board, args.duration, args.rate, args.statsd_rate,
                              args.churn_period, warmup), flush=True)
    # SIGTERM unwinds like Ctrl-C, so the agent and the StatsD sender are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    seen = [0]

    def progress(res: SoakResult) -> None:
        print(progress_line(res, seen[0]), flush=True)
        seen[0] = len(res.latencies)

    with tempfile.TemporaryDirectory(prefix="bf-soak-") as tmp, Soak(
            Path(tmp), args.board, args.statsd_rate, args.churn_period,
            args.sample_every) as soak:
        started = time.monotonic()
        res = soak.run(duration=args.duration, rate=args.rate,
                       progress_every=args.progress, progress=progress)
        took = time.monotonic() - started
    if res.samples:
        table(res.samples)
    report(res, took)
    if res.agent_exit is not None or res.errors:
        print("agent %s; %d bad answers, first: %s" % (
            "died with status %s" % res.agent_exit if res.agent_exit is not None else "alive",
            len(res.errors), "; ".join(res.errors[:5])))
        print("agent log tail:\n" + "\n".join(res.log.splitlines()[-20:]))
        return 2
    flat = verdict(res, warmup)
    print("verdict: %s" % ("flat" if flat else "NOT flat (leak?)"))
    return 0 if flat else 1


if __name__ == "__main__":
    raise SystemExit(main())
