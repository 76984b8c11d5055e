"""``boardfleet soak report`` against a real Prometheus holding 72 h of recorded history.

The history (tests/soak/history.py) is backfilled with ``promtool tsdb
create-blocks-from openmetrics`` and served by Debian's Prometheus; the report must
give each scenario board the verdict and the reasons its scenario calls for.
"""

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Dict, Iterator, List

import jsonschema
import junitparser
import pytest
import yaml
from fastapi.testclient import TestClient
from soak.history import SCENARIOS, backfill, serve, window

from boardfleet.cli import main
from boardfleet.inventory import load
from boardfleet.probe import Prober
from boardfleet.service.app import ServiceState, create_app
from boardfleet.soak.render import SCHEMA_PATH
from boardfleet.soak.store import Alert, SoakStore
from boardfleet.transports.pool import SessionPool
from boardfleet.transports.secrets import Secrets

pytestmark = pytest.mark.slow
BOARDS = ["soak-" + s for s in SCENARIOS] + ["soak-nodata"]
EXPECTED = {
    "soak-healthy": [],
    "soak-mmz-leak": [r"^MMZ zone anonymous lost 24 MiB per app restart, 6 restarts$"],
    "soak-reboot": [r"^rebooted at \d{4}-\d\d-\d\d 03:12 UTC$",
                    r"^alert BoardDown \(critical\) fired at .* 03:12 UTC for 6 min$"],
    "soak-slow-leak": [r"^process infer_app accelerator memory grew 2\.0 MiB/h \(R² 1\.00\)$"],
    "soak-ddr-duty": [r"^DDR above 40 % for 20 % of the run \(peak 55 %\)$"],
    "soak-latency-drift": [r"^p99 of yolov8 rose from 1[34] ms to 3[12] ms$"],
    "soak-gaps": [r"^scraped 9[12] % of the run \(3 gaps, longest 1\.9 h from .*\)$"],
    "soak-nodata": [r"^no data from Prometheus in the window"],
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    """Prometheus over the history, an inventory of the scenario boards and a run."""
    d = tmp_path_factory.mktemp("soak-history")
    start, end = window(datetime.now(UTC).timestamp())
    backfill(d, start)
    # A copy for a second Prometheus (one data directory serves one Prometheus).
    shutil.copytree(d / "data", d / "limited" / "data")
    inv = d / "boards.yml"
    inv.write_text(yaml.safe_dump({"boards": [
        {"name": b, "host": "10.9.0.%d" % i, "platform": "hisi",
         "labels": {"rack": "r1" if i % 2 else "r2"}} for i, b in enumerate(BOARDS, 1)]}))
    store = SoakStore(str(d / "soaks.sqlite"))
    store.start("fw-2.3", BOARDS, "soak-*", {"firmware": "2.3", "operator": "li"}, now=start)
    store.stop("fw-2.3", now=end)
    # The same boards a day earlier-ending window: "firmware 2.2" for the comparison.
    store.start("fw-2.2", BOARDS[:3], "soak-*", {"firmware": "2.2"}, now=start)
    store.stop("fw-2.2", now=start + 24 * 3600)
    reboot = start + 27 * 3600 + 12 * 60
    store.record_alert(Alert("BoardDown", "critical", "soak-reboot", reboot, reboot + 360,
                             "Board agent unreachable", {"board": "soak-reboot"}), "f1")
    store.record_alert(Alert("BoardDDRBandwidthHigh", "warning", "soak-healthy", start + 3600,
                             start + 3780, "DDR bandwidth above 40%", {}), "f2")
    store.record_alert(Alert("BoardDown", "critical", "soak-healthy", start - 7200,
                             start - 3600, "before the run", {}), "f3")
    with serve(d) as prom:
        yield {"dir": d, "inventory": inv, "url": prom.url, "start": start, "end": end}


def _report(lab: Dict[str, Any], fmt: str, *args: str) -> tuple:
    out = lab["dir"] / ("report." + fmt)
    rc = main(["soak", "-i", str(lab["inventory"]), "report", *args, "--prometheus",
               lab["url"], "--format", fmt, "--out", str(out)])
    return rc, out.read_text() if out.exists() else ""


def test_verdicts_and_reasons_match_the_scenarios(lab: Dict[str, Any],
                                                  capsys: pytest.CaptureFixture) -> None:
    rc, text = _report(lab, "json", "fw-2.3")
    assert rc == 1
    err = capsys.readouterr().err
    assert "[1/17] scrape completeness" in err and "8 boards: 1 pass, 7 fail" in err
    doc = json.loads(text)
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    got = {b["board"]: b for b in doc["boards"]}
    assert sorted(got) == sorted(BOARDS)
    for board, patterns in EXPECTED.items():
        b = got[board]
        assert b["verdict"] == ("pass" if not patterns else "fail"), (board, b["reasons"])
        assert len(b["reasons"]) == len(patterns), (board, b["reasons"])
        for pattern, reason in zip(patterns, b["reasons"], strict=True):
            assert re.search(pattern, reason), (board, reason)
    assert doc["run"]["meta"] == {"firmware": "2.3", "operator": "li"}
    assert doc["problems"] == []


def test_evidence_figures(lab: Dict[str, Any]) -> None:
    _, text = _report(lab, "json", "fw-2.3")
    f = {b["board"]: b["figures"] for b in json.loads(text)["boards"]}
    healthy, leak = f["soak-healthy"], f["soak-mmz-leak"]
    assert healthy["app_restarts"] == {"infer_app": 6} == leak["app_restarts"]
    assert healthy["scrape_completeness"] == 1.0 and healthy["reboots"] == []
    assert abs(healthy["mmz"]["anonymous"]["loss_bytes"]) < 2**20
    assert leak["mmz"]["anonymous"]["min_free_bytes"] == 12 * 2**20
    assert leak["mmz"]["anonymous"]["loss_bytes"] == 144 * 2**20
    assert leak["mmz"]["anonymous"]["r2"] > 0.9
    assert f["soak-reboot"]["reboots"] == [lab["start"] + 27 * 3600 + 12 * 60 + 30]
    assert f["soak-reboot"]["app_restarts"] == {"infer_app": 6}
    assert f["soak-ddr-duty"]["ddr"]["peak_ratio"] == 0.55
    assert f["soak-slow-leak"]["accelerator_memory"]["infer_app"]["r2"] > 0.99
    assert "mmz" not in f["soak-slow-leak"] or f["soak-slow-leak"]["mmz"] == {}
    lat = f["soak-latency-drift"]["latency"]["yolov8"]
    assert lat["p99_drift"] > 2 and lat["end_p50"] > lat["start_p50"]
    assert healthy["model_load_seconds_max"] == {"yolov8/first": 1.8}
    assert healthy["temperature_peak_celsius"] == {"cpu": 61.0}
    assert healthy["accelerator_utilization_avg"] == {"nnie": pytest.approx(0.6)}
    # Alerts inside the window are listed; a warning does not fail the board, and an
    # alert that ended before the run is not there.
    assert [(a["alertname"], a["seconds"]) for a in healthy["alerts"]] == [
        ("BoardDDRBandwidthHigh", 180)]


def test_junit_is_one_testcase_per_board(lab: Dict[str, Any]) -> None:
    _, text = _report(lab, "junit", "fw-2.3")
    xml = junitparser.JUnitXml.fromstring(text)
    suites = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]
    assert len(suites) == 1 and suites[0].name == "soak fw-2.3"
    cases = {c.name: c for c in suites[0]}
    assert sorted(cases) == sorted(BOARDS)
    assert cases["soak-healthy"].is_passed
    failure = cases["soak-mmz-leak"].result[0]
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "MMZ zone anonymous lost 24 MiB per app restart, 6 restarts"
    assert suites[0].failures == 7 and suites[0].tests == 8


def test_markdown_for_a_chat_message(lab: Dict[str, Any]) -> None:
    _, text = _report(lab, "markdown", "fw-2.3")
    assert text.startswith("**Soak fw-2.3** (")
    assert "8 boards, 1 pass, 7 fail" in text
    assert "| soak-healthy | ✅ pass | - |" in text
    assert "| soak-ddr-duty | ❌ fail | DDR above 40 % for 20 % of the run (peak 55 %) |" in text


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: List[str] = []
        self.sections: Dict[str, List[str]] = {}
        self.current = ""
        self.external: List[str] = []
        self.bounds = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "section":
            self.current = a["id"]
            self.sections[self.current] = []
        if tag == "svg" and self.current:
            self.sections[self.current].append(a.get("aria-label", ""))
        if tag == "line" and a.get("class") == "bound":
            self.bounds += 1
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith("#"):
                self.external.append(a[key])


def test_html_is_self_contained_with_plots(lab: Dict[str, Any]) -> None:
    _, text = _report(lab, "html", "fw-2.3")
    page = _Page()
    page.feed(text)
    page.close()
    assert page.external == []
    assert sorted(page.sections) == sorted("board-" + b for b in BOARDS)
    assert page.sections["board-soak-healthy"] == [
        "MMZ free per zone (MiB)", "Accelerator memory per process (MiB)",
        "DDR utilisation (%)", "Latency p99 per model (ms)"]
    assert page.sections["board-soak-nodata"] == []
    assert page.bounds == len(BOARDS) - 1          # the 40 % line on every DDR plot
    assert "MMZ zone anonymous lost 24 MiB per app restart, 6 restarts" in text
    assert "<td>firmware</td>" not in text and "<th>firmware</th><td>2.3</td>" in text


def _chromium(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    assert exe, "chromium not found: scripts/setup installs Debian's chromium"
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                           "--enable-logging=stderr", "--v=0", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=120)


def test_html_renders_in_headless_chromium(lab: Dict[str, Any]) -> None:
    """Debian's chromium opens the page offline: plots drawn, no console message.

    The screenshot is kept as a test artefact in $BOARDFLEET_ARTEFACTS (default: the
    test's temporary directory)."""
    _, text = _report(lab, "html", "fw-2.3")
    page = lab["dir"] / "report.html"
    artefacts = Path(os.environ.get("BOARDFLEET_ARTEFACTS", str(lab["dir"])))
    artefacts.mkdir(parents=True, exist_ok=True)
    shot = artefacts / "soak-report.png"
    r = _chromium("--window-size=1200,2400", "--screenshot=%s" % shot, page.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20000
    dom = _chromium("--dump-dom", page.as_uri()).stdout
    # Four plots per board with data; the Horizon slow-leak board has no MMZ plot.
    assert dom.count("<svg") == text.count("<svg") == 4 * (len(BOARDS) - 1) - 1
    assert dom.count("<polyline") >= dom.count("<svg")


def test_window_and_selector_instead_of_a_run(lab: Dict[str, Any]) -> None:
    start = datetime.fromtimestamp(lab["start"], UTC).isoformat()
    rc, text = _report(lab, "json", "--from", start.replace("+00:00", "Z"),
                       "--to", "%d" % (lab["start"] + 24 * 3600), "--boards",
                       "soak-healthy,soak-reboot,soak-slow-leak")
    assert rc == 1
    got = {b["board"]: b for b in json.loads(text)["boards"]}
    assert sorted(got) == ["soak-healthy", "soak-reboot", "soak-slow-leak"]
    # The first day: no reboot yet, and the leak is as steady as over three days.
    assert got["soak-reboot"]["verdict"] == "pass"
    assert got["soak-slow-leak"]["verdict"] == "fail"


def test_run_narrowed_by_a_selector(lab: Dict[str, Any]) -> None:
    rc, text = _report(lab, "markdown", "fw-2.3", "--boards", "rack=r1")
    rows = [line.split(" | ")[0].strip("| ") for line in text.splitlines()
            if line.startswith("| soak-")]
    assert rows == sorted(b for i, b in enumerate(BOARDS, 1) if i % 2) and rc == 1


def test_prometheus_down_names_url_and_query(lab: Dict[str, Any],
                                             capsys: pytest.CaptureFixture) -> None:
    out = lab["dir"] / "down.json"
    rc = main(["soak", "-i", str(lab["inventory"]), "report", "fw-2.3", "--prometheus",
               "http://127.0.0.1:9", "--format", "json", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert "Prometheus at http://127.0.0.1:9" in err and "up{board=~" in err
    assert "Traceback" not in err


def test_service_serves_the_report(lab: Dict[str, Any],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOARDFLEET_PROMETHEUS_URL", lab["url"])
    state = ServiceState(load(str(lab["inventory"])), Prober(SessionPool({}, Secrets())), None)
    with TestClient(create_app(state)) as c:
        page = c.get("/soaks/fw-2.3", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "<svg" in page.text
        assert "rebooted at" in page.text
        xml = c.get("/soaks/fw-2.3/report", params={"format": "junit"})
        assert xml.headers["content-type"].startswith("application/xml")
        assert 'name="soak-mmz-leak"' in xml.text
        assert c.get("/soaks/fw-2.3").json()["meta"]["firmware"] == "2.3"


def test_queries_prometheus_refuses_are_listed_and_the_rest_judged(
        lab: Dict[str, Any], capsys: pytest.CaptureFixture) -> None:
    """A Prometheus whose sample limit refuses the long range queries: the report says
    which evidence is missing and still judges on what it got."""
    with serve(lab["dir"] / "limited", "--query.max-samples=20000") as prom:
        out = lab["dir"] / "limited.json"
        rc = main(["soak", "-i", str(lab["inventory"]), "report", "fw-2.3", "--prometheus",
                   prom.url, "--format", "json", "--out", str(out)])
    assert rc == 1, capsys.readouterr().err
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    assert doc["problems"], doc
    assert all("too many samples" in p for p in doc["problems"])
    missing = {p.split(":")[0] for p in doc["problems"]}
    assert "MMZ minimum free" in missing or "latency p99 over the run" in missing
    got = {b["board"]: b for b in doc["boards"]}
    assert got["soak-reboot"]["verdict"] == "fail"      # boot times still came through
    assert any("rebooted at" in r for r in got["soak-reboot"]["reasons"])


def test_compare_two_runs(lab: Dict[str, Any], capsys: pytest.CaptureFixture) -> None:
    base = ["soak", "-i", str(lab["inventory"]), "compare", "fw-2.2", "fw-2.3",
            "--prometheus", lab["url"]]
    assert main([*base, "--format", "json"]) == 0
    c = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in c["runs"]] == ["fw-2.2", "fw-2.3"]
    rows = {r["board"]: r for r in c["boards"]}
    assert sorted(rows) == sorted(BOARDS)
    leak = rows["soak-mmz-leak"]
    assert leak["a"]["verdict"] == "fail" and leak["b"]["verdict"] == "fail"
    assert leak["a"]["mmz_loss_bytes_max"] < leak["b"]["mmz_loss_bytes_max"] == 144 * 2**20
    assert rows["soak-reboot"]["a"]["verdict"] == "pass"        # the reboot came later
    assert rows["soak-slow-leak"]["a"]["verdict"] == "absent"   # not in fw-2.2
    assert main([*base]) == 0
    md = capsys.readouterr().out
    assert md.startswith("**Soak fw-2.2** (firmware=2.2) against **fw-2.3**")
    assert "| soak-healthy | ✅ pass | ✅ pass | 0 → 0 |" in md
