"""CPU of one scrape's work in process: this checkout's agent against another's (issue 18).

A scrape of the agent costs its collector round, the rendering of the round and the
live families (``process_*``, inference), and the HTTP exchange (agent_http_cpu.py).
This measures the first two as :meth:`Agent.render` runs them, in a fresh interpreter
per agent and Python, on a fixture sysroot with the collectors of
agent_vs_node_exporter.py: thread CPU time (``time.thread_time``) per round, the median
of ``--repeats`` batches of ``--rounds`` rounds, batches alternating between the
agents so that load on the machine falls on both alike. The collectors run on the
calling thread, as the scheduler thread runs them (``timeout=None``), and the agent's
monotonic clock moves ``--cadence`` seconds on per round, so that what it caches for a
while expires as between real scrapes. With ``--profile``
it prints instead a cProfile of this checkout's rounds, by own time (``SORT=cumulative``
in the environment: by time with callees).

    python3 benchmarks/agent_round_cpu.py --other /tmp/cpu-before/agent
        [--python /usr/bin/python3.8 --extra-path ~/.cache/boardfleet/py38-site]
        [--board generic] [--cadence 5] [--rounds 200] [--repeats 15] [--profile]
"""

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
COLLECTORS = ["cpu", "cpufreq", "memory", "loadavg", "thermal", "filesystem", "info"]

# Runs in the child: build the agent as the CLI does, then time batches on request.
CHILD = """\
import sys, time
# Each round a scrape interval later: caches expire as between real scrapes.
_monotonic, _shift = time.monotonic, [0.0]
time.monotonic = lambda: _monotonic() + _shift[0]
def scrape():
    _shift[0] += float(sys.argv[5])
    agent.render()
from boardfleet_agent.app import Agent
from boardfleet_agent.cli import build_parser, resolve_config
from boardfleet_agent.runner import ScrapeRunner
argv = ["--sysroot", sys.argv[1], "--statsd-listen", "off", "--collector.disable-defaults"]
argv += ["--collector.%s" % c for c in sys.argv[2].split(",")]
agent = Agent(resolve_config(build_parser().parse_args(argv)), background=False)
agent.runner = ScrapeRunner(agent.collectors, agent.src, background=False, timeout=None)
for _ in range(20):
    scrape()
if sys.argv[3] == "profile":
    import cProfile, os, pstats
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(int(sys.argv[4])):
        scrape()
    prof.disable()
    pstats.Stats(prof).sort_stats(os.environ.get("SORT", "tottime")).print_stats(30)
    sys.exit(0)
print(len(agent.render()), flush=True)
for line in sys.stdin:
    n = int(line)
    t0 = time.thread_time()
    for _ in range(n):
        scrape()
    print((time.thread_time() - t0) / n, flush=True)
"""


class Child:
    """An interpreter holding one agent, timing batches of rounds on request."""

    def __init__(self, python: str, agent_dir: Path, extra: str, root: Path,
                 cadence: float) -> None:
        path = os.pathsep.join(p for p in (str(agent_dir), extra) if p)
        self.proc = subprocess.Popen(
            [python, "-c", CHILD, str(root), ",".join(COLLECTORS), "time", "0", str(cadence)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=path))
        assert self.proc.stdout is not None
        self.body_bytes = int(self.proc.stdout.readline())
        self.seconds: List[float] = []

    def batch(self, rounds: int) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("%d\n" % rounds)
        self.proc.stdin.flush()
        self.seconds.append(float(self.proc.stdout.readline()))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--other", type=Path, action="append", default=[],
                   help="another checkout's agent dir to compare with (repeatable)")
    p.add_argument("--python", action="append", help="interpreter (repeatable)")
    p.add_argument("--extra-path", default="", help="more PYTHONPATH (tomli for Python 3.8)")
    p.add_argument("--board", default="generic")
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--cadence", type=float, default=5.0,
                   help="seconds between scrapes the agent's clock sees (default 5)")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    root = REPO / "tests" / "fixtures" / args.board
    pythons = args.python or [sys.executable]
    if args.profile:
        for python in pythons:
            print("== %s" % python, flush=True)
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                p for p in (str(REPO / "agent"), args.extra_path) if p))
            subprocess.run([python, "-c", CHILD, str(root), ",".join(COLLECTORS), "profile",
                            str(args.rounds), str(args.cadence)], env=env, check=True)
        return
    dirs: Dict[str, Path] = {"this": REPO / "agent"}
    for i, other in enumerate(args.other):
        dirs["other%d" % (i + 1) if len(args.other) > 1 else "other"] = other
    for python in pythons:
        children = {k: Child(python, d, args.extra_path, root, args.cadence)
                    for k, d in dirs.items()}
        for _ in range(args.repeats):
            for child in children.values():
                child.batch(args.rounds)
        for child in children.values():
            child.close()
        print("%s (%s rounds x %d, %gs apart):"
              % (python, args.rounds, args.repeats, args.cadence))
        med = {k: statistics.median(c.seconds) for k, c in children.items()}
        for k, c in children.items():
            print("  %-6s %-36s %6.0f us/round (min %.0f), %d bytes, this/it %.2f"
                  % (k, dirs[k], med[k] * 1e6, min(c.seconds) * 1e6, c.body_bytes,
                     med["this"] / med[k]))


if __name__ == "__main__":
    main()
