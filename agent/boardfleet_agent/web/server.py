"""The HTTP endpoint: ``/metrics``, a landing page and ``/-/healthy``.

``ssl`` (about 5 MiB of RSS) is imported only when the web config configures TLS.
``http.server`` imports ``http.client``, which imports ``ssl`` for HTTPS *clients*; the
agent is none, so unless something imported ``ssl`` already, ``http.client`` is loaded
here without it (it then lacks ``HTTPSConnection``; ``ssl`` itself stays importable).
"""

import logging
import socket
import sys
import threading
import time
import zlib
from collections import deque

if "ssl" not in sys.modules and "http.client" not in sys.modules:
    sys.modules["ssl"] = None  # type: ignore[assignment]
    try:
        import http.client  # noqa: F401
    finally:
        del sys.modules["ssl"]

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Deque, Dict, Optional, Tuple

from boardfleet_agent import __version__
from boardfleet_agent.exposition import CONTENT_TYPE
from boardfleet_agent.web.config import WebConfig

log = logging.getLogger("boardfleet.agent")

GZIP_LEVEL = 1  # the fastest: a board's CPU is dearer than the scrape's bytes

LANDING = """<!doctype html>
<html><head><title>boardfleet agent</title></head>
<body><h1>boardfleet agent %s</h1>
<p>Platform: %s</p>
<p><a href="/metrics">Metrics</a></p></body></html>
"""


# What a board can afford to give HTTP clients (the listen address defaults to 0.0.0.0):
MAX_CONNECTIONS = 32  # handler threads at once
MAX_PER_CLIENT = 8  # of those, for one client address
MAX_WAITING = 64  # accepted connections waiting for a handler; more are closed at once
MAX_REQUEST_HEAD = 16 * 1024  # bytes of request line and headers
HEAD_TIMEOUT = 10.0  # seconds to send them, once a request has begun
IDLE_TIMEOUT = 30.0  # seconds a kept-alive connection may wait for its next request


class HeadLimitExceeded(Exception):
    """A client sent too large or too slow a request head."""


class _HeadReader:
    """``rfile`` for a handler: request heads bounded in size and time.

    ``BaseHTTPRequestHandler`` would buffer up to 100 header lines of 64 KB each, and
    a socket timeout alone lets a client trickle one byte per timeout for ever. Reads
    here come from the socket in chunks, each recv given only the time left.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.budget = MAX_REQUEST_HEAD
        self.deadline = 0.0
        self._started = False

    def next_request(self) -> None:
        """Reset the limits: the next request may start within the idle timeout."""
        self.budget = MAX_REQUEST_HEAD
        self.deadline = time.monotonic() + IDLE_TIMEOUT
        self._started = False

    def _fill(self) -> bool:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise HeadLimitExceeded("request head not sent in time")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(4096)
        except socket.timeout:
            raise HeadLimitExceeded("request head not sent in time") from None
        if chunk and not self._started:
            self._started = True
            self.deadline = min(self.deadline, time.monotonic() + HEAD_TIMEOUT)
        self.budget -= len(chunk)
        if self.budget < 0:
            raise HeadLimitExceeded("request head larger than %d bytes" % MAX_REQUEST_HEAD)
        self.buf += chunk
        return bool(chunk)

    def readline(self, limit: int = -1) -> bytes:
        while b"\n" not in self.buf and (limit < 0 or len(self.buf) < limit):
            if not self._fill():
                break
        end = self.buf.find(b"\n") + 1 or len(self.buf)
        if limit >= 0:
            end = min(end, limit)
        line, self.buf = self.buf[:end], self.buf[end:]
        return line

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self.buf) < n:
            if not self._fill():
                break
        n = len(self.buf) if n < 0 else n
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def close(self) -> None:
        pass


def accepts_gzip(header: str) -> bool:
    """True if an ``Accept-Encoding`` value accepts gzip (not refused by ``q=0``)."""
    for part in header.split(","):
        coding, _, params = part.partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            q = params.strip().lower()
            if not q.startswith("q="):
                return True
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
    return False


def gzip(body: bytes) -> bytes:
    """``body`` as a gzip stream (no file name, no time: the same body gives the same bytes)."""
    z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    return z.compress(body) + z.flush()


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # listen backlog: bursts of connects are not SYN-retried

    def __init__(self, addr: Tuple[str, int], render: Callable[[], bytes],
                 platform: str, web: Optional[WebConfig] = None,
                 health: Optional[Callable[[], Tuple[bool, str]]] = None) -> None:
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        # Before binding: a bind that fails calls server_close, which reads these.
        self._slots = threading.Lock()
        self._open: Dict[str, int] = {}  # connections being handled, per client address
        # Accepted connections waiting for a handler thread: (socket, address, since).
        self._waiting: Deque[Tuple[socket.socket, Tuple[str, int], float]] = deque()
        super().__init__(addr, _Handler)
        self.render = render
        self.platform = platform
        self.web = web or WebConfig()
        self.health = health or (lambda: (True, "ok"))
        self.refused = 0  # connections closed at once: too many waiting
        self._refusal_logged = 0.0

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        """Hand the connection to a handler thread, or queue it while none is free.

        At most MAX_CONNECTIONS handler threads run, MAX_PER_CLIENT for one address;
        up to MAX_WAITING more connections wait, and a freed thread takes the waiting
        connection of the address with the fewest being handled: a client holding
        many connections open does not lock the scraper out.
        """
        with self._slots:
            if not self._free_for(client_address[0]):
                if len(self._waiting) < MAX_WAITING:
                    self._waiting.append((request, client_address, time.monotonic()))
                    return
                self._refuse(client_address[0])
                self.shutdown_request(request)
                return
            self._open[client_address[0]] = self._open.get(client_address[0], 0) + 1
        threading.Thread(target=self._handle_then_next, args=(request, client_address),
                         name="http-handler", daemon=True).start()

    def _free_for(self, host: str) -> bool:
        return (sum(self._open.values()) < MAX_CONNECTIONS
                and self._open.get(host, 0) < MAX_PER_CLIENT)

    def _refuse(self, host: str) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._refusal_logged > 60:
            self._refusal_logged = now
            log.warning("refusing connections: %d handled (%d from %s), %d waiting; %d "
                        "refused so far", sum(self._open.values()), self._open.get(host, 0),
                        host, len(self._waiting), self.refused)

    def _handle_then_next(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        while True:
            self.process_request_thread(request, client_address)
            with self._slots:
                host = client_address[0]
                left = self._open.get(host, 1) - 1
                if left > 0:
                    self._open[host] = left
                else:
                    self._open.pop(host, None)
                picked = self._next_waiting()
                if picked is None:
                    return
                request, client_address = picked
                self._open[client_address[0]] = self._open.get(client_address[0], 0) + 1

    def _next_waiting(self) -> Optional[Tuple[socket.socket, Tuple[str, int]]]:
        """The waiting connection to serve next (under ``_slots``), dropping stale ones."""
        now = time.monotonic()
        best = None
        for i, (_sock, addr, since) in enumerate(self._waiting):
            if now - since > IDLE_TIMEOUT:
                continue
            if self._free_for(addr[0]) and (
                    best is None or self._open.get(addr[0], 0) < self._open.get(
                        self._waiting[best][1][0], 0)):
                best = i
        stale = [w for w in self._waiting if now - w[2] > IDLE_TIMEOUT]
        picked = None
        if best is not None:
            sock, addr, _ = self._waiting[best]
            del self._waiting[best]
            picked = (sock, addr)
        for w in stale:
            self._waiting.remove(w)
            self.shutdown_request(w[0])
        return picked

    def server_close(self) -> None:
        super().server_close()
        with self._slots:
            while self._waiting:
                self.shutdown_request(self._waiting.popleft()[0])

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        log.debug("connection from %s failed", client_address[0], exc_info=True)

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
    timeout = HEAD_TIMEOUT

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the buffered reader would hold the socket open
        self.rfile = _HeadReader(self.connection)  # type: ignore[assignment]

    def parse_request(self) -> bool:
        ok = super().parse_request()
        self.connection.settimeout(IDLE_TIMEOUT)  # for sending the answer
        return ok

    def handle(self) -> None:
        try:
            handshake = getattr(self.connection, "do_handshake", None)  # a TLS socket's
            if handshake is not None:
                handshake()
            super().handle()
        except (OSError, HeadLimitExceeded) as e:  # ssl.SSLError is an OSError
            # Includes TLS clients that never handshake: one debug line, no traceback.
            log.debug("connection from %s dropped: %s", self.client_address[0], e)

    def handle_one_request(self) -> None:
        self.rfile.next_request()  # type: ignore[attr-defined]
        self.connection.settimeout(HEAD_TIMEOUT)
        super().handle_one_request()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        web = self.server.web
        client = self.client_address[0]
        if path != "/-/healthy" and web.users and web.failures.blocked(client):
            self.send_response(429)
            self.send_header("Retry-After", "%d" % web.failures.window)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path != "/-/healthy" and not web.authorized(self.headers.get("Authorization"),
                                                       client):
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
            if accepts_gzip(self.headers.get("Accept-Encoding", "")):
                self._send(200, gzip(body), CONTENT_TYPE, {"Content-Encoding": "gzip"})
            else:
                self._send(200, body, CONTENT_TYPE)
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

    def _send(self, code: int, body: bytes, ctype: str,
              extra: Optional[Dict[str, str]] = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**self.server.web.headers, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)
