"""Fixtures of the soak tests: a stand-in Grafana that records annotations."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Dict, Iterator, List

import pytest

from boardfleet.soak.annotations import TOKEN_ENV, URL_ENV


class Recorder(BaseHTTPRequestHandler):
    """A stand-in Grafana on loopback: records every request and answers 200."""

    seen: List[Dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Recorder.seen.append({"path": self.path, "auth": self.headers.get("Authorization"),
                              "body": json.loads(body)})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": 1, "message": "Annotation added"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def grafana(monkeypatch: pytest.MonkeyPatch) -> Iterator[List[Dict[str, Any]]]:
    """Grafana on a free loopback port, configured through the environment; yields
    the requests it received."""
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Recorder.seen = []
    monkeypatch.setenv(URL_ENV, "http://127.0.0.1:%d/" % server.server_port)
    monkeypatch.setenv(TOKEN_ENV, "glsa_test")
    yield Recorder.seen
    server.shutdown()
    server.server_close()
