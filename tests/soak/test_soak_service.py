"""Fleet service soak routes: runs API, Alertmanager webhook history, /metrics, Grafana."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boardfleet.inventory import load
from boardfleet.probe import Prober
from boardfleet.service.app import ServiceState, create_app
from boardfleet.transports.pool import SessionPool
from boardfleet.transports.secrets import Secrets

TOKEN = "s3cret-token"
AUTH = {"Authorization": "Bearer " + TOKEN}


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    inv = tmp_path / "boards.yml"
    inv.write_text(yaml.safe_dump({"boards": [
        {"name": "hi-01", "host": "198.18.250.1", "platform": "hisi", "labels": {"rack": "r1"}},
        {"name": "hi-02", "host": "198.18.250.2", "platform": "hisi", "labels": {"rack": "r2"}},
        {"name": "rdk-01", "host": "198.18.250.3", "platform": "horizon",
         "labels": {"rack": "r1"}}]}))
    state = ServiceState(load(str(inv)), Prober(SessionPool({}, Secrets())), TOKEN)
    with TestClient(create_app(state)) as c:
        yield c


def _payload(status: str, starts: datetime, ends: datetime | None = None,
             board: str = "hi-01") -> Dict[str, Any]:
    return {
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": status,
        "receiver": "boardfleet", "groupLabels": {}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": "BoardMMZExhausted", "severity": "critical",
                       "board": board, "zone": "anonymous"},
            "annotations": {"summary": "MMZ zone nearly exhausted"},
            "startsAt": starts.isoformat().replace("+00:00", "Z"),
            "endsAt": (ends.isoformat().replace("+00:00", "Z") if ends
                       else "0001-01-01T00:00:00Z"),
            "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": "5ad1f6e8c2b7a0d3"}],
    }


def test_runs_over_the_api(client: TestClient, grafana: List[Dict[str, Any]]) -> None:
    assert client.post("/soaks", json={"name": "n1", "boards": "rack=r1"}).status_code == 401
    r = client.post("/soaks", json={"name": "n1", "boards": "rack=r1",
                                    "meta": {"firmware": "2.3"}}, headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json()["boards"] == ["hi-01", "rdk-01"]
    assert client.post("/soaks", json={"name": "n1", "boards": "all"},
                       headers=AUTH).status_code == 409
    assert client.post("/soaks", json={"name": "n2", "boards": "rack=r9"},
                       headers=AUTH).status_code == 404
    assert client.post("/soaks", json={"name": "n2", "boards": "1rack=r1"},
                       headers=AUTH).status_code == 422
    assert client.post("/soaks", json={"name": "bad name", "boards": "all"},
                       headers=AUTH).status_code == 422
    assert [x["name"] for x in client.get("/soaks").json()] == ["n1"]
    assert client.get("/soaks/n1").json()["active"] is True
    assert client.get("/soaks/nope").status_code == 404
    page = client.get("/soaks", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert '<a href="/soaks/n1">n1</a>' in page.text
    metrics = client.get("/metrics").text
    assert 'boardfleet_soak_active{board="hi-01",soak="n1"} 1.0' in metrics
    assert 'boardfleet_soak_active{board="rdk-01",soak="n1"} 1.0' in metrics
    assert 'board="hi-02"' not in metrics
    r = client.post("/soaks/n1/stop", headers=AUTH)
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.post("/soaks/n1/stop", headers=AUTH).status_code == 409
    assert "boardfleet_soak_active{" not in client.get("/metrics").text
    # Grafana saw one annotation per start and stop, with the token and the run's tags.
    assert [s["path"] for s in grafana] == ["/api/annotations"] * 2
    assert all(s["auth"] == "Bearer glsa_test" for s in grafana)
    start, stop = (s["body"] for s in grafana)
    assert {"soak", "soak:n1", "start", "board:hi-01"} <= set(start["tags"])
    assert "stop" in stop["tags"] and stop["time"] >= start["time"]
    assert "firmware=2.3" in start["text"]


def test_report_with_prometheus_down_fails_every_board_saying_why(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOARDFLEET_PROMETHEUS_URL", "http://127.0.0.1:9")
    client.post("/soaks", json={"name": "n1", "boards": "all"}, headers=AUTH)
    doc = client.get("/soaks/n1/report?format=json").json()
    assert [b["verdict"] for b in doc["boards"]] == ["fail"] * 3
    reason = doc["boards"][0]["reasons"][0]
    assert reason.startswith("no verdict: Prometheus at http://127.0.0.1:9")
    assert doc["problems"] == [reason]
    assert client.get("/soaks/nope/report").status_code == 404


def test_webhook_keeps_firing_and_resolved(client: TestClient) -> None:
    t0 = datetime(2026, 11, 30, 3, 12, tzinfo=UTC)
    for body in (_payload("firing", t0), _payload("firing", t0),
                 _payload("resolved", t0, t0 + timedelta(minutes=42))):
        r = client.post("/alerts/webhook", json=body)
        assert r.status_code == 200 and r.json() == {"stored": 1}
    history = client.get("/alerts", params={"from": t0.timestamp() - 60}).json()
    assert len(history) == 1
    a = history[0]
    assert (a["alertname"], a["severity"], a["board"]) == ("BoardMMZExhausted", "critical",
                                                           "hi-01")
    assert a["ends_at"] - a["starts_at"] == 42 * 60
    assert client.get("/alerts", params={"board": "hi-02"}).json() == []


_json = st.recursive(st.none() | st.booleans() | st.integers()
                     | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(), c,
                                                                         max_size=4),
                     max_leaves=20)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    _json,
    st.fixed_dictionaries({"version": st.just("4"), "status": st.sampled_from(
        ["firing", "resolved", "odd"]), "alerts": st.lists(st.fixed_dictionaries({
            "status": st.sampled_from(["firing", "resolved"]),
            "labels": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
            "startsAt": st.sampled_from(["2026-11-30T03:12:00Z", "garbage", "0001-01-01T00:00:00Z",
                                         "9999-12-31T23:59:59Z"]),
            "fingerprint": st.text(max_size=20)}), max_size=3)})))
def test_garbage_webhooks_never_break_the_service(client: TestClient, body: Any) -> None:
    r = client.post("/alerts/webhook", json=body)
    assert r.status_code in (200, 422), r.text
    assert client.get("/alerts").status_code == 200


def test_webhook_with_surrogates_is_stored(client: TestClient) -> None:
    body = json.dumps(_payload("firing", datetime(2026, 11, 30, tzinfo=UTC),
                               board="hi-\ud800"), ensure_ascii=True)
    r = client.post("/alerts/webhook", content=body,
                    headers={"Content-Type": "application/json"})
    assert r.status_code in (200, 422)
