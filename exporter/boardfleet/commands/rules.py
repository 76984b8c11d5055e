"""``boardfleet rules generate``: write Prometheus rule files from thresholds.yml."""

import argparse
import sys
from pathlib import Path

from boardfleet.rules import load_thresholds, render, write
from boardfleet.scaleout import vmalert_rules
from boardfleet.thresholds import ThresholdsError

DEFAULT_THRESHOLDS = "prometheus/thresholds.yml"
DEFAULT_OUT = "prometheus/rules"


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("rules", help="generate Prometheus rule files from the thresholds",
                       description="Generate recording and alerting rules from the one "
                                   "thresholds file.")
    rsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    gen = rsub.add_parser("generate", help="write the rule files (or check them with --check)")
    gen.add_argument("-t", "--thresholds", default=DEFAULT_THRESHOLDS, metavar="FILE",
                     help="thresholds file (default %s)" % DEFAULT_THRESHOLDS)
    gen.add_argument("-o", "--out", default=DEFAULT_OUT, metavar="DIR",
                     help="directory for the rule files (default %s)" % DEFAULT_OUT)
    gen.add_argument("--check", action="store_true",
                     help="write nothing; exit 1 if the files in --out are out of date")
    gen.set_defaults(func=_generate)
    vm = rsub.add_parser("vmalert", help="copy the rule files for vmalert 1.79 (Debian "
                                         "bookworm), which predates keep_firing_for")
    vm.add_argument("-r", "--rules", default=DEFAULT_OUT, metavar="DIR",
                    help="generated rule files to read (default %s)" % DEFAULT_OUT)
    vm.add_argument("-o", "--out", required=True, metavar="DIR", help="where to write them")
    vm.set_defaults(func=_vmalert)


def _generate(args: argparse.Namespace) -> int:
    try:
        t = load_thresholds(args.thresholds)
        files = render(t)
    except ThresholdsError as e:
        sys.stderr.write("boardfleet: cannot generate rules: %s\n" % e)
        return 2
    if args.check:
        stale = [n for n, text in files.items() if not _same(Path(args.out) / n, text)]
        for name in stale:
            sys.stderr.write("boardfleet: %s/%s is out of date; run 'boardfleet rules "
                             "generate'\n" % (args.out, name))
        return 1 if stale else 0
    for path in write(t, args.out).values():
        sys.stdout.write("wrote %s\n" % path)
    return 0


def _same(path: Path, text: str) -> bool:
    return path.exists() and path.read_text(encoding="utf-8") == text


def _vmalert(args: argparse.Namespace) -> int:
    sources = sorted(Path(args.rules).glob("*.yml"))
    if not sources:
        sys.stderr.write("boardfleet: no rule files (*.yml) in %s\n" % args.rules)
        return 2
    for path in vmalert_rules(sources, Path(args.out)):
        sys.stdout.write("wrote %s\n" % path)
    return 0
