"""``boardfleet``: the central command line.

Each subcommand lives in its own module under :mod:`boardfleet.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (returning an exit
code) as the parser default.
"""

import argparse
import importlib
import pkgutil
import sys
from typing import List

from boardfleet import __version__, commands

DESCRIPTION = """\
Fleet telemetry for embedded AI boards (HiSilicon, Horizon, Snapdragon): install the
board agent over SSH, keep the board inventory, probe agentless boards, and run the
central Prometheus/Alertmanager/Grafana stack."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="boardfleet", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version="%(prog)s " + __version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module("boardfleet.commands." + mod.name).register(sub)
    return p


def main(argv: List[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)
