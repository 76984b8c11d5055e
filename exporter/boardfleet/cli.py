"""``boardfleet``: the central command line."""

import argparse
from typing import List

from boardfleet import __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="boardfleet",
        description="Fleet telemetry for embedded AI boards: install agents over SSH, "
                    "keep the board inventory, run the central stack.")
    p.add_argument("--version", action="version", version="%(prog)s " + __version__)
    p.add_subparsers(dest="command", metavar="COMMAND")
    return p


def main(argv: List[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    return 0
