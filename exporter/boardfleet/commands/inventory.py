"""``boardfleet inventory``: list, add and remove boards in boards.yml.

Changes keep the file's comments and mode, take the inventory lock (shared with
``agent install`` and the fleet service) and rewrite the Prometheus file-SD targets
(``--targets-dir``), so a board added here is scraped without another step.
"""

import argparse
import sys

from boardfleet.fleet import targets_dir, write_file_sd
from boardfleet.inventory import Board, InventoryError, editing, load
from boardfleet_agent.config import DEFAULT_PORT

DEFAULT_INVENTORY = "boards.yml"


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("inventory", help="list, add or remove boards in the inventory",
                       description="Manage the board inventory (a YAML file).")
    p.add_argument("-i", "--inventory", default=DEFAULT_INVENTORY, metavar="FILE",
                   help="inventory file (default %s)" % DEFAULT_INVENTORY)
    p.add_argument("--targets-dir", metavar="DIR",
                   help="Prometheus file SD directory kept in sync with the inventory "
                        "(default: prometheus/targets next to the inventory)")
    isub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = isub.add_parser("list", help="print the boards")
    ls.set_defaults(func=_list)
    add = isub.add_parser("add", help="add a board")
    add.add_argument("name")
    add.add_argument("host")
    add.add_argument("--port", type=int, default=22, help="SSH/telnet port (default 22)")
    add.add_argument("--user", default="root")
    add.add_argument("--platform", default="auto")
    add.add_argument("--mode", default="agent", help="agent or agentless (default agent)")
    add.add_argument("--transport", default="ssh", help="ssh or telnet (default ssh)")
    add.add_argument("--agent-port", type=int, default=DEFAULT_PORT,
                     help="port the board's agent serves /metrics on (default %d)"
                          % DEFAULT_PORT)
    add.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                     help="extra label such as rack=r1 (repeatable)")
    add.set_defaults(func=_add)
    rm = isub.add_parser("remove", help="remove a board")
    rm.add_argument("name")
    rm.set_defaults(func=_remove)


def _list(args: argparse.Namespace) -> int:
    try:
        inv = load(args.inventory)
    except InventoryError as e:
        sys.stderr.write("boardfleet: %s\n" % e)
        return 2
    fmt = "%-24s %-22s %-10s %-9s %s\n"
    sys.stdout.write(fmt % ("NAME", "HOST", "PLATFORM", "MODE", "LABELS"))
    for b in inv:
        labels = ",".join("%s=%s" % kv for kv in sorted(b.labels.items()))
        sys.stdout.write(fmt % (b.name, "%s:%d" % (b.host, b.port), b.platform, b.mode, labels))
    return 0


def _add(args: argparse.Namespace) -> int:
    try:
        labels = dict(_label(s) for s in args.label)
        with editing(args.inventory) as inv:
            inv.add(Board(name=args.name, host=args.host, port=args.port, user=args.user,
                          platform=args.platform, mode=args.mode, transport=args.transport,
                          agent_port=args.agent_port, labels=labels))
            targets = write_file_sd(inv, targets_dir(args.inventory, args.targets_dir))
    except (InventoryError, OSError) as e:
        sys.stderr.write("boardfleet: %s\n" % e)
        return 2
    sys.stdout.write("added %s to %s (targets: %s)\n" % (args.name, args.inventory, targets))
    return 0


def _remove(args: argparse.Namespace) -> int:
    try:
        with editing(args.inventory) as inv:
            inv.remove(args.name)
            targets = write_file_sd(inv, targets_dir(args.inventory, args.targets_dir))
    except (InventoryError, OSError) as e:
        sys.stderr.write("boardfleet: %s\n" % e)
        return 2
    sys.stdout.write("removed %s from %s (targets: %s)\n" % (args.name, args.inventory,
                                                             targets))
    return 0


def _label(text: str):
    key, sep, value = text.partition("=")
    if not sep:
        raise InventoryError("label %r must look like KEY=VALUE" % text)
    return key, value
