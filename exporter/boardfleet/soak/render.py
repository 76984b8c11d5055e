"""A :class:`~boardfleet.soak.report.Report` as JSON, JUnit XML, Markdown or HTML.

Libraries: Jinja2 for the HTML page (autoescaping, a template a lab can restyle) and
junitparser for JUnit XML (writes the testsuite/testcase/failure layout Jenkins and
GitLab read). JSON follows ``report.schema.json`` next to this module.
"""

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Dict

import jinja2
import junitparser

from boardfleet import __version__
from boardfleet.soak import svg
from boardfleet.soak.report import Report

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
SCHEMA_ID = "https://boardfleet.dev/schemas/soak-report-1.json"


def to_dict(r: Report) -> Dict[str, Any]:
    return {
        "$schema": SCHEMA_ID,
        "run": {"name": r.name, "start": r.start, "end": r.end, "meta": r.meta},
        "generated": r.generated,
        "generator": "boardfleet %s" % __version__,
        "prometheus": r.prometheus,
        "step_seconds": r.step,
        "criteria": {k: list(v) if isinstance(v, tuple) else v
                     for k, v in asdict(r.criteria).items()},
        "summary": {"boards": len(r.boards),
                    "pass": sum(b.verdict == "pass" for b in r.boards),
                    "fail": sum(b.verdict != "pass" for b in r.boards)},
        "problems": r.problems,
        "boards": [{"board": b.board, "verdict": b.verdict, "reasons": b.reasons,
                    "figures": b.figures} for b in r.boards],
    }


def to_json(r: Report) -> str:
    return json.dumps(to_dict(r), indent=2, sort_keys=False) + "\n"


def to_junit(r: Report) -> str:
    suite = junitparser.TestSuite("soak %s" % r.name)
    suite.timestamp = _iso(r.start)
    suite.add_property("start", _iso(r.start))
    suite.add_property("end", _iso(r.end))
    suite.add_property("prometheus", r.prometheus)
    for key, value in sorted(r.meta.items()):
        suite.add_property("meta." + key, value)
    for b in r.boards:
        case = junitparser.TestCase(b.board, classname="soak.%s" % r.name, time=r.end - r.start)
        if b.verdict != "pass":
            case.result = [junitparser.Failure("; ".join(b.reasons), type_="soak-verdict")]
        case.system_out = json.dumps(b.figures, sort_keys=True)
        suite.add_testcase(case)
    xml = junitparser.JUnitXml("boardfleet soak")
    xml.add_testsuite(suite)
    return xml.tostring().decode("utf-8")


def to_markdown(r: Report) -> str:
    d = to_dict(r)["summary"]
    lines = ["**Soak %s** (%s to %s): %d boards, %d pass, %d fail" % (
        r.name, _iso(r.start), _iso(r.end), d["boards"], d["pass"], d["fail"]), ""]
    if r.meta:
        lines += [", ".join("%s=%s" % kv for kv in sorted(r.meta.items())), ""]
    lines += ["| board | verdict | reasons |", "|---|---|---|"]
    for b in r.boards:
        reasons = "; ".join(b.reasons).replace("|", "\\|") or "-"
        lines.append("| %s | %s | %s |" % (b.board, "✅ pass" if b.verdict == "pass"
                                           else "❌ fail", reasons))
    for p in r.problems:
        lines.append("\n> missing: %s" % p)
    return "\n".join(lines) + "\n"


_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                          autoescape=True)
_ENV.filters["iso"] = lambda t: _iso(t) if t is not None else "still firing"
_ENV.filters["mib"] = lambda b: "-" if b is None else "%.1f MiB" % (b / 2**20)
_ENV.filters["pct"] = lambda r: "-" if r is None else "%.1f %%" % (r * 100)
_ENV.filters["ms"] = lambda s: "-" if s is None else "%.1f ms" % (s * 1000)
_ENV.filters["num"] = lambda v: "-" if v is None else "%.3g" % v


def to_html(r: Report) -> str:
    plots = {}
    for b in r.boards:
        charts = []
        for title, series in b.series.items():
            ddr = r.criteria.ddr_ratio if title.startswith("DDR") else None
            charts.append(svg.chart(title, series, r.start, r.end,
                                    bound=ddr * 100 if ddr is not None else None,
                                    bound_label="%g %%" % (ddr * 100) if ddr is not None else ""))
        plots[b.board] = charts
    return _ENV.get_template("report.html.j2").render(
        r=r, d=to_dict(r), plots=plots, version=__version__)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
