"""How long ``boardfleet soak report`` takes on a long run over a large fleet.

Backfills ``--hours`` of recorded history (the scenario boards of tests/soak/history.py,
round-robin) for ``--boards`` boards into a real Prometheus, then times the report:
queries and analysis, and each output format. Peer measured in the same run: the
report's charts drawn with matplotlib (when installed) against the hand-written SVG
the report uses.

    .venv/bin/python benchmarks/soak_report.py --boards 200 --hours 72
"""

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from soak.history import SCENARIOS, backfill, serve, window

from boardfleet.soak import criteria, report, svg


def _matplotlib_chart(title, series, start, end):  # pragma: no cover (benchmark only)
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 2.2))
    for name, pts in series.items():
        ax.plot([t for t, _ in pts], [v for _, v in pts], label=name, linewidth=1)
    ax.axhline(40, linestyle="--", color="red")
    ax.set_title(title)
    ax.set_xlim(start, end)
    ax.legend(loc="upper right")
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    return buf.getvalue()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--boards", type=int, default=200)
    p.add_argument("--hours", type=int, default=72)
    p.add_argument("--interval", type=int, default=300, help="sample interval (s)")
    args = p.parse_args()
    scenarios = [SCENARIOS[i % len(SCENARIOS)] for i in range(args.boards)]
    with tempfile.TemporaryDirectory(prefix="boardfleet-soak-bench-") as tmp:
        d = Path(tmp)
        start, _ = window(time.time())
        end = start + args.hours * 3600
        t = time.perf_counter()
        backfill(d, start, scenarios=scenarios, hours=args.hours, interval=args.interval,
                 prefix="b")
        print("backfill: %d boards x %d h at %d s: %.1f s" % (
            args.boards, args.hours, args.interval, time.perf_counter() - t))
        names = ["b%03d-%s" % (i, s) for i, s in enumerate(scenarios)]
        with serve(d) as prom:
            w = report.Window("bench", start, end, names)
            crit = criteria.load()
            t = time.perf_counter()
            rep = report.build(w, prom.url, crit)
            build = time.perf_counter() - t
            print("queries + verdicts: %.2f s (step %d s), %d fail" % (
                build, rep.step, sum(b.verdict != "pass" for b in rep.boards)))
            for fmt in ("json", "junit", "markdown", "html"):
                t = time.perf_counter()
                text = report.render(rep, fmt)
                print("render %-8s %.2f s, %d kB" % (fmt, time.perf_counter() - t,
                                                     len(text) // 1024))
    charts = [(title, series) for b in rep.boards[:20] for title, series in b.series.items()]
    ours = []
    for title, series in charts:
        t = time.perf_counter()
        svg.chart(title, series, start, end, 40)
        ours.append(time.perf_counter() - t)
    print("hand SVG chart: median %.2f ms over %d charts" % (
        statistics.median(ours) * 1000, len(ours)))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib not installed: no peer figure")
        return 0
    _matplotlib_chart(*charts[0], start, end)   # warm-up (imports, font cache)
    theirs = []
    for title, series in charts:
        t = time.perf_counter()
        _matplotlib_chart(title, series, start, end)
        theirs.append(time.perf_counter() - t)
    print("matplotlib chart: median %.2f ms; ratio hand SVG / matplotlib %.3f" % (
        statistics.median(theirs) * 1000, statistics.median(ours) / statistics.median(theirs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
