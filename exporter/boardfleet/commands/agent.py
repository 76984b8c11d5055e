"""``boardfleet agent install|upgrade|uninstall|status``: the agent on boards over SSH.

With ``[user@]HOST[:PORT]`` one board is handled and registered in the inventory;
without it, every SSH board of the inventory, in parallel, ending with a summary.
"""

import argparse
import getpass
import io
import json
import os
import re
import sys
import urllib.parse
import urllib.request

from boardfleet import bundle, fleet
from boardfleet.installer import BoardInstaller, Options, Outcome, StepError, connect
from boardfleet.inventory import Board, Inventory, InventoryError, editing, load
from boardfleet.ssh import parse_target

DEFAULT_INVENTORY = "boards.yml"


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("agent", help="install, upgrade, uninstall or query the board agent",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    asub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, helptext in (("install", "install and start the agent (idempotent)"),
                           ("upgrade", "replace the bundle; roll back if it fails"),
                           ("uninstall", "stop the agent and remove what install added"),
                           ("status", "table of boards: reachable, version, up")):
        a = asub.add_parser(name, help=helptext, description=helptext)
        _common(a)
        a.set_defaults(func=_main)


def _common(a: argparse.ArgumentParser) -> None:
    a.add_argument("target", nargs="?", metavar="[USER@]HOST[:PORT]",
                   help="one board; without it, every SSH board in the inventory")
    a.add_argument("-i", "--inventory", default=DEFAULT_INVENTORY, metavar="FILE",
                   help="inventory file (default %s)" % DEFAULT_INVENTORY)
    a.add_argument("--name", help="board name for HOST (default: HOST)")
    a.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    a.add_argument("--platform", default=None, help="override platform detection")
    a.add_argument("--agent-port", type=int, default=None)
    a.add_argument("--prefix", help="install root on the board (default /; tests)")
    a.add_argument("--sysroot", help="where the board's /proc and /sys are (default /; tests)")
    a.add_argument("--listen", help="agent listen HOST:PORT (default 0.0.0.0:AGENT_PORT)")
    a.add_argument("--init", default="auto", choices=("auto", "systemd", "sysv", "openrc"))
    a.add_argument("--identity", metavar="KEY", help="SSH private key (also: agent, ~/.ssh)")
    a.add_argument("--ask-password", action="store_true",
                   help="prompt for an SSH password (never stored)")
    a.add_argument("--known-hosts", metavar="FILE",
                   help="project known_hosts (default: known_hosts next to the inventory)")
    a.add_argument("--accept-new-host-key", action="store_true",
                   help="trust unknown host keys on first use and save them")
    a.add_argument("--host-key-fingerprint", metavar="SHA256:...",
                   help="pin the board's host key (single board)")
    a.add_argument("--bundle", metavar="FILE", help="agent bundle (default: built here)")
    a.add_argument("--targets-dir", metavar="DIR",
                   help="Prometheus file SD directory (default: prometheus/targets next "
                        "to the inventory)")
    a.add_argument("--jobs", type=int, default=8, help="boards in parallel (default 8)")
    a.add_argument("--health-timeout", type=float, default=20.0, metavar="SECONDS")
    a.add_argument("--allow-downgrade", action="store_true",
                   help="install/upgrade even if the board runs a newer agent")
    a.add_argument("--prometheus", metavar="URL", help="status: read last scrape from here")


def _board_from_args(args: argparse.Namespace, inv: Inventory) -> Board:
    user, host, port = parse_target(args.target)
    name = args.name or re.sub(r"[^A-Za-z0-9._-]", "-", host).strip("-.")[:63] or "board"
    board = inv.boards.get(name) or Board(name=name, host=host)
    board.host, board.port, board.user = host, port, user
    for key, value in (("platform", args.platform), ("agent_port", args.agent_port),
                       ("sysroot", args.sysroot)):
        if value is not None:
            setattr(board, key, value)
    board.install = board.install.copy()
    if args.prefix:
        board.install["prefix"] = args.prefix
    if args.listen:
        board.install["listen"] = args.listen
    for text in args.label:
        key, sep, value = text.partition("=")
        if not sep:
            raise InventoryError("label %r must look like KEY=VALUE" % text)
        board.labels[key] = value
    board.validate()
    return board


def _main(args: argparse.Namespace) -> int:
    try:
        inv = load(args.inventory)
        boards = [_board_from_args(args, inv)] if args.target else [
            b for b in inv if b.transport == "ssh" and (b.mode == "agent"
                                                        or args.action != "uninstall")]
        data = _read_bundle(args) if args.action in ("install", "upgrade") else b""
    except (InventoryError, ValueError, OSError) as e:
        sys.stderr.write("boardfleet: %s\n" % e)
        return 2
    if not boards:
        sys.stderr.write("boardfleet: no boards (give HOST or list boards in %s)\n"
                         % args.inventory)
        return 2
    ignored = [flag for flag, value in (
        ("--name", args.name), ("--label", args.label), ("--platform", args.platform),
        ("--agent-port", args.agent_port), ("--prefix", args.prefix),
        ("--sysroot", args.sysroot), ("--listen", args.listen),
        ("--host-key-fingerprint", args.host_key_fingerprint)) if value]
    if ignored and not args.target:
        sys.stderr.write("boardfleet: %s apply to one board: give [USER@]HOST, or set them "
                         "per board in %s\n" % (", ".join(ignored), args.inventory))
        return 2
    password = None
    if args.ask_password:
        if not sys.stdin.isatty():
            sys.stderr.write("boardfleet: --ask-password needs a terminal; use an SSH key "
                             "(--identity KEY or ssh-agent) for unattended runs\n")
            return 2
        try:
            password = getpass.getpass("SSH password: ")
        except (EOFError, KeyboardInterrupt):
            sys.stderr.write("\nboardfleet: no password given\n")
            return 2
    known = args.known_hosts or os.path.join(os.path.dirname(os.path.abspath(args.inventory)),
                                             "known_hosts")
    opts = Options(bundle=data, health_timeout=args.health_timeout, init=args.init,
                   allow_downgrade=args.allow_downgrade)
    if args.action == "status":
        return _status(args, boards, known, password)

    def action(board: Board) -> Outcome:
        conn = connect(board, known_hosts=known, accept_new=args.accept_new_host_key,
                       fingerprint=args.host_key_fingerprint, key_filename=args.identity,
                       password=password)
        with conn:
            inst = BoardInstaller(conn, board, opts)
            if args.action == "uninstall":
                return inst.uninstall()
            outcome = inst.install(upgrade_only=args.action == "upgrade")
            board.mode = "agentless" if outcome.action == "agentless" else "agent"
            if board.platform == "auto":
                board.platform = inst.probe.platform
            return outcome

    outcomes = fleet.run(boards, action, workers=args.jobs)
    try:
        _register(args, boards, outcomes)
    except (InventoryError, OSError) as e:
        sys.stderr.write("boardfleet: cannot record the results in %s: %s\n"
                         % (args.inventory, e))
        fleet.summary(outcomes)
        return 1
    fleet.summary(outcomes)
    for o in outcomes:
        if o.action == "agentless":
            sys.stdout.write("%s has no usable python3: registered for agentless collection "
                             "(mode: agentless) in %s\n" % (o.board, args.inventory))
    if any(o.action == "interrupted" for o in outcomes):
        return 130
    return 1 if any(o.action == "failed" for o in outcomes) else 0


def _read_bundle(args: argparse.Namespace) -> bytes:
    if args.bundle:
        with open(args.bundle, "rb") as f:
            return f.read()
    return bundle.build()


def _register(args: argparse.Namespace, boards: list[Board],
              outcomes: list[Outcome]) -> None:
    """Record installed/agentless boards, drop uninstalled ones, rewrite the targets.

    The inventory is re-read under its lock, so edits made while the fleet ran (by
    another command or the fleet service) are kept; only the boards handled here change.
    """
    done = [(b, o) for b, o in zip(boards, outcomes, strict=True)
            if o.action in ("installed", "upgraded", "unchanged", "agentless", "uninstalled")]
    if not done:
        return
    with editing(args.inventory) as inv:
        for board, o in done:
            if o.action != "uninstalled":
                inv.add(board, replace=True)
            elif board.name in inv.boards:
                inv.remove(board.name)
                sys.stdout.write("%s: removed from %s and from the scrape targets\n"
                                 % (board.name, args.inventory))
        fleet.write_file_sd(inv, fleet.targets_dir(args.inventory, args.targets_dir))


def _status(args: argparse.Namespace, boards: list[Board], known: str,
            password: str | None) -> int:
    rows: dict[str, tuple[str, str, str, str]] = {}
    reasons: dict[str, str] = {}

    def one(board: Board) -> Outcome:
        reach, version, service = "no", "-", "-"
        try:
            with connect(board, known_hosts=known, accept_new=args.accept_new_host_key,
                         fingerprint=args.host_key_fingerprint, key_filename=args.identity,
                         password=password) as conn:
                reach = "yes"
                st = BoardInstaller(conn, board, Options(bundle=b"")).status()
                version, service = st["version"], st["service"]
        except StepError as e:
            reach = "no"
            reasons[board.name] = e.message
        rows[board.name] = (reach, version, service + "/" + _http_up(board),
                            _last_scrape(args.prometheus, board.name))
        return Outcome(board.name, "ok")

    fleet.run(boards, one, workers=args.jobs, out=io.StringIO())
    fmt = "%-24s %-22s %-10s %-16s %s\n"
    sys.stdout.write(fmt % ("BOARD", "REACHABLE", "VERSION", "SERVICE/HTTP", "LAST SCRAPE"))
    for b in boards:
        sys.stdout.write(fmt % ((b.name, *rows[b.name])))
    for name, why in sorted(reasons.items()):
        sys.stdout.write("\n%s unreachable: %s\n" % (name, why))
    return 0 if all(r[0] == "yes" for r in rows.values()) else 1


def _http_up(board: Board) -> str:
    """Does the agent answer /metrics from here (as Prometheus would scrape it)?"""
    host, _, port = board.install.get("listen", "").rpartition(":")
    if host in ("", "0.0.0.0", "[::]"):
        host, port = board.host, str(board.agent_port)
    try:
        with urllib.request.urlopen("http://%s:%s/metrics" % (host, port), timeout=3) as r:
            return "up" if r.status == 200 else "down"
    except OSError:
        return "down"


def _last_scrape(prometheus: str | None, name: str) -> str:
    """Seconds since Prometheus last scraped the board (``-`` without --prometheus)."""
    if not prometheus:
        return "-"
    query = 'time() - timestamp(up{board="%s"})' % name
    url = prometheus.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            result = json.load(r)["data"]["result"]
        return "%.0fs ago" % float(result[0]["value"][1]) if result else "never"
    except (OSError, ValueError, KeyError, IndexError):
        return "?"
