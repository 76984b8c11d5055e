"""The alert history fed by a real Alertmanager (Debian's) through its webhook receiver.

The fleet service runs as ``boardfleet serve``; Alertmanager's receiver points at
``/alerts/webhook`` as issue 12's configuration does, with ``send_resolved``.
"""

import json
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, List

import yaml
from support.net import free_port, wait_http
from support.process import terminate
from support.prom import start_alertmanager

CLI = [sys.executable, "-c", "import sys; from boardfleet.cli import main; sys.exit(main())"]


def _post(url: str, body: Any) -> None:
    req = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def _history(service: str, want: int, ended: bool, timeout: float = 60) -> List[dict]:
    deadline = time.monotonic() + timeout
    while True:
        alerts = json.loads(wait_http(service + "/alerts?from=0"))
        if len(alerts) >= want and all((a["ends_at"] is not None) == ended for a in alerts):
            return alerts
        assert time.monotonic() < deadline, alerts
        time.sleep(0.5)


def test_alertmanager_webhook_fills_the_history(tmp_path: Path) -> None:
    inv = tmp_path / "boards.yml"
    inv.write_text(yaml.safe_dump({"boards": [{"name": "hi-01", "host": "198.18.250.1"}]}))
    port = free_port()
    service = "http://127.0.0.1:%d" % port
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen([*CLI, "serve", "-i", str(inv), "--listen",
                                 "127.0.0.1:%d" % port], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(service + "/healthz", timeout=30)
        config = {
            "route": {"receiver": "boardfleet", "group_by": ["alertname", "board"],
                      "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "boardfleet", "webhook_configs": [
                {"url": service + "/alerts/webhook", "send_resolved": True}]}],
        }
        with start_alertmanager(config) as am:
            starts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
            alert = {"labels": {"alertname": "BoardMMZExhausted", "severity": "critical",
                                "board": "hi-01", "zone": "anonymous"},
                     "annotations": {"summary": "MMZ zone nearly exhausted"},
                     "startsAt": starts.isoformat()}
            _post(am.url + "/api/v2/alerts", [alert])
            firing = _history(service, 1, ended=False)
            assert [(a["alertname"], a["board"], a["severity"]) for a in firing] == [
                ("BoardMMZExhausted", "hi-01", "critical")]
            assert firing[0]["starts_at"] == starts.timestamp()
            ends = datetime.now(UTC).replace(microsecond=0)
            _post(am.url + "/api/v2/alerts", [{**alert, "endsAt": ends.isoformat()}])
            resolved = _history(service, 1, ended=True)
            assert len(resolved) == 1 and resolved[0]["ends_at"] == ends.timestamp()
            assert resolved[0]["labels"]["zone"] == "anonymous"
    finally:
        terminate(proc)
    assert (tmp_path / "soaks.sqlite").exists()
