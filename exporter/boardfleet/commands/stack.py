"""``boardfleet stack up|down|status``: the central stack from local binaries, no Docker."""

import argparse
import signal
import sys
import threading
from pathlib import Path

from boardfleet.scaleout import VMPorts
from boardfleet.stack import FIXTURES, Ports, Proc, Stack, StackError, healthy
from boardfleet.stack_vm import VMStack

DEFAULT_STATE = ".stack"


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("stack", help="run Prometheus, Alertmanager, the fleet service and "
                                     "demo boards locally (no Docker)",
                       description="Run the central stack from local binaries (Debian's "
                                   "prometheus and prometheus-alertmanager packages). "
                                   "Grafana runs under docker-compose only.")
    p.add_argument("--state-dir", default=DEFAULT_STATE, type=Path, metavar="DIR",
                   help="configs, data, logs and pids (default %s)" % DEFAULT_STATE)
    ssub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = ssub.add_parser("up", help="start the stack; Ctrl-C stops it (unless --detach)")
    up.add_argument("--detach", action="store_true",
                    help="return once everything is healthy; stop with 'stack down'")
    up.add_argument("--host", default="127.0.0.1", help="address to listen on")
    defaults = Ports()
    for name in ("prometheus", "alertmanager", "service", "boards"):
        up.add_argument("--%s-port" % name, type=int, default=getattr(defaults, name),
                        metavar="PORT", help="default %d%s" % (
                            getattr(defaults, name),
                            " (first demo board; the next ones count up, skipping taken ports)"
                            if name == "boards" else ""))
    up.add_argument("--demo-sysroots", type=Path, default=FIXTURES, metavar="DIR",
                    help="one demo board per sysroot under DIR (default %s)" % FIXTURES)
    up.add_argument("--sim-boards", type=int, default=4, metavar="N",
                    help="simulated HiSilicon boards ('boardfleet simulate'; default 4, 0: none)")
    vm = up.add_argument_group(
        "VictoriaMetrics (Debian's victoria-metrics package; docs/scaleout.md)")
    vm.add_argument("--tsdb", choices=("prometheus", "victoriametrics"), default="prometheus",
                    help="where samples go: one Prometheus (default), or VictoriaMetrics")
    vm.add_argument("--shards", type=int, default=2, metavar="N",
                    help="with victoriametrics: N vmagent shards + vmalert (default 2); 0: "
                         "Prometheus as usual, remote-writing to VictoriaMetrics")
    vm.add_argument("--replication", type=int, default=1, metavar="R",
                    help="shards scraping each board (default 1; 2 survives a shard loss, "
                         "VictoriaMetrics deduplicates)")
    vm.add_argument("--retention", default="12", metavar="PERIOD",
                    help="VictoriaMetrics retention: months, or with h/d/w/y (default 12)")
    vm_defaults = VMPorts()
    for name in ("victoriametrics", "vmagent", "vmalert"):
        vm.add_argument("--%s-port" % name, type=int, default=getattr(vm_defaults, name),
                        metavar="PORT", help="default %d%s" % (
                            getattr(vm_defaults, name),
                            " (first shard; the next ones count up, skipping taken ports)"
                            if name == "vmagent" else ""))
    up.set_defaults(func=_up)
    ssub.add_parser("down", help="stop the stack").set_defaults(func=_down)
    ssub.add_parser("status", help="show what runs and whether it answers"
                    ).set_defaults(func=_status)


def _up(args: argparse.Namespace) -> int:
    ports = Ports(args.prometheus_port, args.alertmanager_port, args.service_port,
                  args.boards_port)
    stack = Stack(args.state_dir.resolve(), args.host, ports, args.demo_sysroots.resolve(),
                  args.sim_boards)
    if args.tsdb == "victoriametrics":
        stack = VMStack(stack.state, stack.host, ports, stack.demo_sysroots, stack.sim_boards,
                        shards=args.shards, replication=args.replication,
                        vm_ports=VMPorts(args.victoriametrics_port, args.vmagent_port,
                                         args.vmalert_port), retention=args.retention)
        try:
            _ = stack.topology  # validates shards and replication
        except ValueError as e:
            sys.stderr.write("boardfleet: %s\n" % e)
            return 2
    stop = threading.Event()
    if not args.detach:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    try:
        procs = stack.up()
    except StackError as e:
        sys.stderr.write("boardfleet: %s\n" % e)
        return 1
    except KeyboardInterrupt:  # --detach: interrupted while starting; up() stopped it all
        return 130
    _print_urls(stack, procs)
    if args.detach:
        return 0
    sys.stdout.write("Ctrl-C stops the stack.\n")
    sys.stdout.flush()
    while not stop.wait(1):
        dead = [p.name for p in procs if p not in stack.running()]
        if dead:
            sys.stderr.write("boardfleet: %s exited; stopping the stack\n" % ", ".join(dead))
            stack.down()
            return 1
    stack.down()
    sys.stdout.write("stack stopped\n")
    return 0


def _print_urls(stack: Stack, procs: list[Proc]) -> None:
    out = ["boardfleet stack is up (state in %s):" % stack.state]
    boards = [p for p in procs if p.name.startswith("board-")]
    for p in procs:
        if not p.name.startswith("board-"):
            out.append("  %-13s %s" % (p.name, p.url or "%d boards, targets in %s" % (
                stack.sim_boards, p.health)))
    out.append("  %-13s %d agents, %s ... %s" % ("demo boards", len(boards),
                                                 boards[0].url if boards else "-",
                                                 boards[-1].url if boards else "-"))
    out.append("  %-13s not run locally: 'docker-compose up' runs it on :3000" % "grafana")
    if stack.soak:
        prom = next((p.url for p in procs if p.name == "prometheus"), "")
        out.append("  %-13s demo: %s\n      boardfleet soak -i %s report demo --prometheus %s "
                   "--format html --out demo.html"
                   % ("soak run", stack.soak, stack.state / "boards.yml", prom))
    out.extend("  skipped: %s" % s for s in stack.skipped)
    out.append("Add a real board: boardfleet inventory -i %s add NAME HOST --platform hisi"
               "\n  then 'boardfleet stack down' and 'boardfleet stack up' again."
               % (stack.state / "boards.yml"))
    sys.stdout.write("\n".join(out) + "\n")
    sys.stdout.flush()


def _down(args: argparse.Namespace) -> int:
    stopped = Stack(args.state_dir.resolve()).down()
    sys.stdout.write("stopped %d processes\n" % len(stopped))
    return 0


def _status(args: argparse.Namespace) -> int:
    stack = Stack(args.state_dir.resolve())
    recorded, running = stack.recorded(), stack.running()
    if not recorded:
        sys.stdout.write("no stack in %s\n" % stack.state)
        return 3
    for p in recorded:
        state = ("healthy" if healthy(p) else "not answering") if p in running else "exited"
        sys.stdout.write("%-24s pid %-7d %-14s %s\n" % (p.name, p.pid, state, p.url))
    return 0 if len(running) == len(recorded) else 1
