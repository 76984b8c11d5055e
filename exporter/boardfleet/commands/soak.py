"""``boardfleet soak``: start, stop and list soak runs; report their verdict per board."""

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Dict, List

from boardfleet.inventory import InventoryError, load
from boardfleet.soak import annotations
from boardfleet.soak.selector import select
from boardfleet.soak.store import SoakError, SoakStore, default_path
from boardfleet.thresholds import ThresholdsError

if TYPE_CHECKING:
    from boardfleet.soak.report import Window

DEFAULT_INVENTORY = "boards.yml"
DEFAULT_PROMETHEUS = "http://127.0.0.1:9090"
FORMATS = ("html", "json", "junit", "markdown")

EPILOG = """\
A run records which boards a soak covers and when; the report then asks Prometheus
about that window and gives each board a verdict against the `soak:` criteria of
prometheus/thresholds.yml. Runs live in soaks.sqlite next to the inventory.

  boardfleet soak start fw-2.3 --boards rack=r1 --meta firmware=2.3 --meta sdk=1.9
  boardfleet soak list
  boardfleet soak stop fw-2.3
  boardfleet soak report fw-2.3 --format html --out fw-2.3.html
  boardfleet soak compare fw-2.2 fw-2.3 --format markdown
  boardfleet soak report --from 2026-11-28T00:00:00Z --to 2026-12-01T00:00:00Z \\
      --boards 'hi3516-*' --format junit --out soak.xml
"""


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("soak", help="soak runs and their verdict per board",
                       description="Start, stop and list soak runs; report their verdict.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", "--inventory", default=DEFAULT_INVENTORY, metavar="FILE",
                   help="inventory file (default %s)" % DEFAULT_INVENTORY)
    p.add_argument("--store", metavar="FILE",
                   help="soak store (default: soaks.sqlite beside the inventory)")
    ssub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    start = ssub.add_parser("start", help="start a run on the selected boards")
    start.add_argument("name", help="run name, e.g. fw-2.3-night")
    start.add_argument("--boards", required=True, metavar="SELECTOR",
                       help="board names or globs and label terms, comma-separated: "
                            "'hi3516-*', 'rack=r1,owner=vision', 'all'")
    start.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                       help="free metadata such as firmware=2.3 or operator=li (repeatable)")
    _grafana_args(start)
    start.set_defaults(func=_start)

    stop = ssub.add_parser("stop", help="end a run now")
    stop.add_argument("name")
    _grafana_args(stop)
    stop.set_defaults(func=_stop)

    ls = ssub.add_parser("list", help="print the runs")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=_list)

    rep = ssub.add_parser("report", help="verdict per board over a run or a window",
                          description="Query Prometheus over a run (or --from/--to) and "
                                      "write a verdict per board with its reasons and "
                                      "evidence. Exit status 0 when every board passes, "
                                      "1 when one fails, 2 on errors.")
    rep.add_argument("name", nargs="?", help="run name (or give --from and --to)")
    rep.add_argument("--from", dest="start", metavar="T",
                     help="window start: Unix seconds or RFC 3339 (2026-11-28T00:00:00Z)")
    rep.add_argument("--to", dest="end", metavar="T", help="window end (default now)")
    rep.add_argument("--boards", metavar="SELECTOR",
                     help="boards for --from/--to (default all); narrows a run's boards")
    rep.add_argument("--prometheus", default=DEFAULT_PROMETHEUS, metavar="URL",
                     help="Prometheus (or VictoriaMetrics) URL (default %s)"
                          % DEFAULT_PROMETHEUS)
    rep.add_argument("--format", choices=FORMATS, default="html")
    rep.add_argument("--out", metavar="FILE", default="-",
                     help="output file (default: standard output)")
    rep.add_argument("-t", "--thresholds", metavar="FILE",
                     help="thresholds file with the soak: criteria "
                          "(default prometheus/thresholds.yml)")
    rep.add_argument("--step", type=float, metavar="SECONDS",
                     help="query resolution (default: the window / 1000, at least 15 s)")
    rep.set_defaults(func=_report)

    cmp_ = ssub.add_parser("compare", help="two runs side by side (firmware A against B)",
                           description="Report two runs and put their verdicts and headline "
                                       "figures side by side, board by board.")
    cmp_.add_argument("a", metavar="RUN_A")
    cmp_.add_argument("b", metavar="RUN_B")
    cmp_.add_argument("--prometheus", default=DEFAULT_PROMETHEUS, metavar="URL")
    cmp_.add_argument("--format", choices=("markdown", "json"), default="markdown")
    cmp_.add_argument("--out", metavar="FILE", default="-")
    cmp_.add_argument("-t", "--thresholds", metavar="FILE")
    cmp_.set_defaults(func=_compare)


def _grafana_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grafana-url", metavar="URL",
                   help="annotate start/stop in Grafana (default $%s)" % annotations.URL_ENV)
    p.add_argument("--grafana-token-file", metavar="FILE",
                   help="Grafana service-account token (default $%s)" % annotations.TOKEN_ENV)


def _store(args: argparse.Namespace) -> SoakStore:
    return SoakStore(args.store or default_path(args.inventory))


def _grafana(args: argparse.Namespace) -> "annotations.Grafana | None":
    token = None
    if args.grafana_token_file:
        try:
            with open(args.grafana_token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as e:
            raise SoakError("cannot read Grafana token %s: %s"
                            % (args.grafana_token_file, e.strerror)) from None
    return annotations.Grafana.from_env(args.grafana_url, token)


def _meta(items: List[str]) -> Dict[str, str]:
    meta = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SoakError("--meta %r must look like KEY=VALUE" % item)
        meta[key.strip()] = value.strip()
    return meta


def _fail(e: Exception) -> int:
    sys.stderr.write("boardfleet: %s\n" % e)
    return 2


def _start(args: argparse.Namespace) -> int:
    try:
        boards = select(load(args.inventory), args.boards)
        grafana = _grafana(args)
        run = _store(args).start(args.name, boards, args.boards, _meta(args.meta))
    except (SoakError, InventoryError) as e:
        return _fail(e)
    annotations.annotate_quietly(grafana, run, "start", run.started)
    sys.stdout.write("soak %s started at %s on %d boards: %s\n" % (
        run.name, _utc(run.started), len(run.boards), ", ".join(run.boards)))
    return 0


def _stop(args: argparse.Namespace) -> int:
    try:
        grafana = _grafana(args)
        run = _store(args).stop(args.name)
    except SoakError as e:
        return _fail(e)
    assert run.stopped is not None
    annotations.annotate_quietly(grafana, run, "stop", run.stopped)
    sys.stdout.write("soak %s stopped at %s after %s\n" % (
        run.name, _utc(run.stopped), _duration(run.stopped - run.started)))
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        runs = _store(args).runs()
    except SoakError as e:
        return _fail(e)
    if args.json:
        sys.stdout.write(json.dumps([r.to_dict() for r in runs], indent=2) + "\n")
        return 0
    fmt = "%-24s %-8s %-20s %-10s %-7s %s\n"
    sys.stdout.write(fmt % ("NAME", "STATE", "STARTED (UTC)", "DURATION", "BOARDS", "META"))
    now = time.time()
    for r in runs:
        meta = ",".join("%s=%s" % kv for kv in sorted(r.meta.items()))
        sys.stdout.write(fmt % (r.name, "active" if r.active else "stopped", _utc(r.started),
                                _duration((r.stopped or now) - r.started), len(r.boards), meta))
    return 0


def _report(args: argparse.Namespace) -> int:
    from boardfleet.soak import criteria, report
    from boardfleet.soak.prom import PrometheusError

    try:
        crit = criteria.load(args.thresholds)
        window = _window(args)
        rep = report.build(window, args.prometheus, crit, step=args.step,
                           progress=sys.stderr)
        text = report.render(rep, args.format)
        _write(args.out, text)
    except (SoakError, InventoryError, ThresholdsError, PrometheusError) as e:
        return _fail(e)
    failed = [b.board for b in rep.boards if b.verdict != "pass"]
    sys.stderr.write("%d boards: %d pass, %d fail%s\n" % (
        len(rep.boards), len(rep.boards) - len(failed), len(failed),
        " (%s)" % ", ".join(failed[:10]) if failed else ""))
    return 1 if failed else 0


def _compare(args: argparse.Namespace) -> int:
    from boardfleet.soak import compare, criteria, report
    from boardfleet.soak.prom import PrometheusError

    try:
        crit = criteria.load(args.thresholds)
        store = _store(args)
        reps = []
        for name in (args.a, args.b):
            run = store.get(name)
            sys.stderr.write("soak %s:\n" % name)
            w = report.Window(run.name, run.started, run.stopped or time.time(), run.boards,
                              run.meta, store)
            reps.append(report.build(w, args.prometheus, crit, progress=sys.stderr))
        render = compare.to_json if args.format == "json" else compare.to_markdown
        _write(args.out, render(*reps))
    except (SoakError, ThresholdsError, PrometheusError) as e:
        return _fail(e)
    return 0


def _window(args: argparse.Namespace) -> "Window":
    from boardfleet.soak.report import Window

    store = _store(args)
    if args.name:
        if args.start or args.end:
            raise SoakError("give a run name or --from/--to, not both")
        run = store.get(args.name)
        boards = run.boards
        if args.boards:
            boards = [b for b in boards if b in set(_select_names(args, run.boards))]
        return Window(run.name, run.started, run.stopped or time.time(), boards, run.meta,
                      store)
    if not args.start:
        raise SoakError("give a run name, or --from (and --to) for a window")
    start = parse_time(args.start)
    end = parse_time(args.end) if args.end else time.time()
    if end <= start:
        raise SoakError("--to (%s) must be after --from (%s)" % (_utc(end), _utc(start)))
    boards = select(load(args.inventory), args.boards or "all")
    return Window("%s..%s" % (_utc(start), _utc(end)), start, end, boards, {}, store)


def _select_names(args: argparse.Namespace, names: List[str]) -> List[str]:
    inv = load(args.inventory)
    return select([b for b in inv if b.name in names], args.boards)


def parse_time(text: str) -> float:
    """Unix seconds or RFC 3339 (``Z`` or an offset; naive times are UTC)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise SoakError("time %r: use Unix seconds or RFC 3339 like "
                        "2026-11-28T00:00:00Z" % text) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


def _write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise SoakError("cannot write %s: %s" % (path, e.strerror)) from None


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float) -> str:
    h, rem = divmod(int(seconds), 3600)
    return "%dh%02dm" % (h, rem // 60)
