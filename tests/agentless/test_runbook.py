"""Every alert's runbook link opens its own section of the page the fleet service serves."""

import re
from pathlib import Path

import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from boardfleet.service import runbook

REPO = Path(__file__).resolve().parents[2]


def _client(path: Path | None) -> TestClient:
    app = FastAPI()
    app.include_router(runbook.router(path))
    return TestClient(app)


def test_every_alert_links_to_a_section_of_the_served_runbook() -> None:
    page = _client(None).get("/runbook")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    ids = set(re.findall(r'<h[23] id="([^"]+)"', page.text))
    rules = yaml.safe_load((REPO / "prometheus/rules/boardfleet-alerts.yml").read_text())
    links = {r["annotations"]["runbook_url"] for g in rules["groups"] for r in g["rules"]
             if "alert" in r}
    thresholds = yaml.safe_load((REPO / "prometheus/thresholds.yml").read_text())
    assert links and all(u.startswith(thresholds["runbook_url"] + "#") for u in links)
    missing = {u for u in links if u.rsplit("#", 1)[1] not in ids}
    assert not missing, "runbook links without a section: %s" % sorted(missing)


def test_a_missing_runbook_says_how_to_configure_it(tmp_path: Path) -> None:
    page = _client(tmp_path / "nope.md").get("/runbook")
    assert page.status_code == 404 and "--runbook" in page.text


@given(st.text(max_size=300))
def test_any_markdown_renders_and_passes_no_raw_html(text: str) -> None:
    body = runbook.render("<script>alert(1)</script>\n\n" + text).split("</style>", 1)[1]
    assert "<script" not in body.lower()
