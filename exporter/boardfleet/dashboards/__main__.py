"""``python -m boardfleet.dashboards [--check]``: render or check grafana/dashboards/."""

import argparse
import sys

from boardfleet.dashboards import OUT_DIR, drift, write


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m boardfleet.dashboards", description=__doc__)
    p.add_argument("--check", action="store_true",
                   help="exit 1 if the committed JSON differs from the source")
    args = p.parse_args()
    if args.check:
        stale = drift()
        for name in stale:
            sys.stderr.write("%s/%s is stale: run python -m boardfleet.dashboards\n"
                             % (OUT_DIR, name))
        return 1 if stale else 0
    for path in write():
        sys.stdout.write("wrote %s\n" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
