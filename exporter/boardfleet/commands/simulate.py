"""``boardfleet simulate``: simulated boards for demos and tests."""

import argparse
import signal
import sys
import threading

import yaml

from boardfleet.inventory import atomic_write
from boardfleet.simulator.fleet import SimFleet
from boardfleet.simulator.scenarios import SCENARIOS
from boardfleet.simulator.virtual import FIXTURES, VirtualFleet, VirtualFleetError, templates

EPILOG = """\
scenarios: %s

examples:
  boardfleet simulate --boards 4 --scenario idle,ddr-saturation,mmz-leak,board-dies \\
      --out /tmp/sim --agents --targets prometheus/targets/sim.yml
  boardfleet-agent --sysroot /tmp/sim/sim-01-idle --platform hisi --once
""" % ", ".join(SCENARIOS)


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser(
        "simulate", help="serve simulated board sysroots (and agents) for demos",
        description="Keep rewriting simulated HiSilicon sysroots (media-mem, hiddrs, "
                    "thermal) whose values change by scenario; optionally run a real "
                    "agent for each and write a Prometheus file SD target file.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--boards", type=int, default=4, help="number of boards (default 4)")
    p.add_argument("--scenario", default="idle", metavar="LIST",
                   help="comma-separated scenarios, assigned round-robin (default idle)")
    p.add_argument("--out", metavar="DIR", help="where the sysroots go (required unless "
                                                 "--virtual)")
    p.add_argument("--ramp", type=float, default=600.0, metavar="SECONDS",
                   help="how long a scenario takes to unfold: MMZ leak to 99 %%, latency "
                        "spike at half, board death (default 600)")
    p.add_argument("--period", type=float, default=1.0, metavar="SECONDS",
                   help="rewrite interval (default 1)")
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help="stop after this long (default: until interrupted)")
    p.add_argument("--agents", action="store_true",
                   help="start a boardfleet-agent per board on a free loopback port")
    p.add_argument("--targets", metavar="FILE",
                   help="file SD target file to write with --agents (default DIR/targets.yml)")
    p.add_argument("--virtual", action="store_true",
                   help="load testing: serve --boards boards from this process on one port "
                        "(each the real agent's page of a fixture platform, no scenarios), "
                        "and write --targets")
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="with --virtual: address to serve on (default a free loopback port)")
    p.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    if args.virtual:
        return _virtual(args)
    if not args.out:
        sys.stderr.write("boardfleet: --out DIR is required (or --virtual)\n")
        return 2
    try:
        fleet = SimFleet(args.out, args.boards, args.scenario.split(","), ramp=args.ramp)
    except ValueError as e:
        sys.stderr.write("boardfleet: %s\n" % e)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        if args.agents:
            targets = args.targets or "%s/targets.yml" % args.out
            fleet.start_agents(targets)
            sys.stdout.write("agents started; targets in %s\n" % targets)
        for b in fleet.boards:
            sys.stdout.write("%-28s %-15s %s%s\n" % (
                b.name, b.scenario, b.root, " 127.0.0.1:%d" % b.port if b.port else ""))
        sys.stdout.flush()
        deadline = args.duration
        waited = 0.0
        while not stop.is_set() and (deadline is None or waited < deadline):
            fleet.tick()
            stop.wait(args.period)
            waited += args.period
    finally:
        fleet.stop()
    return 0


def _virtual(args: argparse.Namespace) -> int:
    if not args.targets:
        sys.stderr.write("boardfleet: --virtual needs --targets FILE (file SD to write)\n")
        return 2
    host, _, port = args.listen.rpartition(":")
    try:
        fleet = VirtualFleet(args.boards, templates(FIXTURES), host=host or "127.0.0.1",
                             port=int(port))
    except (ValueError, OSError, VirtualFleetError) as e:
        sys.stderr.write("boardfleet: %s\n" % e)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with fleet:
        atomic_write(args.targets, yaml.safe_dump(fleet.file_sd(), sort_keys=False))
        sys.stdout.write("%d virtual boards (%d series) on http://%s/boards/NAME/metrics; "
                         "targets in %s\n" % (len(fleet.boards), fleet.series, fleet.address,
                                               args.targets))
        sys.stdout.flush()
        stop.wait(args.duration)
    return 0
