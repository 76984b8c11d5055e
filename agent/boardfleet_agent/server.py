"""The HTTP endpoint: ``/metrics``, a landing page and ``/-/healthy``."""

import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional, Tuple

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from boardfleet_agent import __version__
from boardfleet_agent.webconfig import WebConfig

log = logging.getLogger("boardfleet.agent")

LANDING = """<!doctype html>
<html><head><title>boardfleet agent</title></head>
<body><h1>boardfleet agent %s</h1>
<p>Platform: %s</p>
<p><a href="/metrics">Metrics</a></p></body></html>
"""


def parse_listen(value: str) -> Tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or ``:PORT`` -> (host, port); ValueError if bad."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("listen address must be HOST:PORT, got %r" % value)
    return host.strip("[]") or "0.0.0.0", int(port)


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: Tuple[str, int], render: Callable[[], bytes],
                 platform: str, web: Optional[WebConfig] = None,
                 health: Optional[Callable[[], Tuple[bool, str]]] = None) -> None:
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, _Handler)
        self.render = render
        self.platform = platform
        self.web = web or WebConfig()
        self.health = health or (lambda: (True, "ok"))

    def get_request(self):  # type: ignore[no-untyped-def]
        sock, addr = self.socket.accept()
        # Headers and body leave as separate writes; without this, Nagle and the
        # client's delayed ACK hold the body back 40 ms on a kept-alive connection.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.web.ssl_context is not None:
            # The handshake runs in the handler's thread, so a slow client cannot
            # stall the accept loop.
            sock = self.web.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def serve_in_thread(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        t.start()
        return t


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer
    server_version = "boardfleet-agent/" + __version__
    # Keep-alive, as Prometheus scrapes: no TCP (and TLS) handshake per scrape. Every
    # response carries Content-Length; an idle connection is closed after ``timeout``.
    protocol_version = "HTTP/1.1"
    timeout = 30

    def handle(self) -> None:
        try:
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.do_handshake()
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError) as e:
            log.debug("connection from %s dropped: %s", self.client_address[0], e)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/-/healthy" and not self.server.web.authorized(
                self.headers.get("Authorization")):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="boardfleet-agent"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/metrics":
            try:
                body = self.server.render()
            except Exception:
                log.exception("scrape failed")
                self._send(500, b"scrape failed\n", "text/plain; charset=utf-8")
                return
            self._send(200, body, CONTENT_TYPE_LATEST)
        elif path == "/":
            page = LANDING % (__version__, self.server.platform)
            self._send(200, page.encode(), "text/html; charset=utf-8")
        elif path == "/-/healthy":
            ok, why = self.server.health()
            if ok:
                self._send(200, b"OK\n", "text/plain; charset=utf-8")
            else:
                self._send(503, ("unhealthy: %s\n" % why).encode(), "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)
