"""The HTTP endpoint: ``/metrics``, a landing page and ``/-/healthy``.

A small HTTP/1.1 server on ``socket`` and a thread per connection being served.
``http.server`` (with ``http.client``, ``email`` and ``socketserver``) cost the served
agent 2-3 MiB of RSS and twice this server's CPU per request, and woke it twice a
second (issue 18, benchmarks/RESULTS.md). ``ssl`` is imported only by a web config
that configures TLS, ``hashlib`` only by one with users.
"""

import contextlib
import errno
import os
import select
import socket
import threading
import time
import zlib
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional, Set, Tuple

from boardfleet_agent import __version__
from boardfleet_agent.exposition import CONTENT_TYPE
from boardfleet_agent.log import log
from boardfleet_agent.web.config import WebConfig
from boardfleet_agent.web.request import HEAD_END, BadRequest, Request, parse_head

GZIP_LEVEL = 1  # the fastest: a board's CPU is dearer than the scrape's bytes

LANDING = """<!doctype html>
<html><head><title>boardfleet agent</title></head>
<body><h1>boardfleet agent %s</h1>
<p>Platform: %s</p>
<p><a href="/metrics">Metrics</a></p></body></html>
"""
SERVER = "boardfleet-agent/" + __version__
TEXT = "text/plain; charset=utf-8"
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 429: "Too Many Requests",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           503: "Service Unavailable", 505: "HTTP Version Not Supported"}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")

# What a board can afford to give HTTP clients (the listen address defaults to 0.0.0.0):
MAX_CONNECTIONS = 32  # handler threads at once
MAX_PER_CLIENT = 8  # of those, for one client address
MAX_WAITING = 64  # accepted connections waiting for a handler; more are closed at once
MAX_REQUEST_HEAD = 16 * 1024  # bytes of request line and headers
HEAD_TIMEOUT = 10.0  # seconds to send them once a request has begun, or to shake hands
IDLE_TIMEOUT = 30.0  # seconds a kept-alive connection may wait for its next request
BACKLOG = 128  # listen backlog: bursts of connects are not SYN-retried

Address = Tuple[Any, ...]  # (host, port), or IPv6's (host, port, flowinfo, scope_id)


class HeadLimitExceeded(Exception):
    """A client sent too large (431) or too slow (408) a request head."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


def read_head(sock: socket.socket, buf: bytes) -> Tuple[Optional[bytes], bytes]:
    """The next request head from ``sock`` after ``buf`` (what the last request left),
    without its last line end, and the bytes after it; (None, b"") if the client
    closes or idles out first.

    Reads are bounded in size and time: a socket timeout alone would let a client
    trickle one byte per timeout for ever, so each recv is given only the time left.
    Empty lines before a request line are skipped (RFC 9112, 2.2).
    """
    now = time.monotonic()
    deadline = now + (HEAD_TIMEOUT if buf else IDLE_TIMEOUT)
    scanned = 0
    while True:
        start = len(buf) - len(buf.lstrip(b"\r\n"))
        end = HEAD_END.search(buf, max(start, scanned - 2))
        if end is not None and end.start() <= MAX_REQUEST_HEAD:
            head = buf[start:end.start()]  # up to the last line's LF
            return head[:-1] if head.endswith(b"\r") else head, buf[end.end():]
        if end is not None or len(buf) > MAX_REQUEST_HEAD:
            raise HeadLimitExceeded(431, "request head larger than %d bytes"
                                    % MAX_REQUEST_HEAD)
        scanned = len(buf)
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise socket.timeout
            sock.settimeout(left)
            chunk = sock.recv(4096)
        except socket.timeout:
            if buf:
                raise HeadLimitExceeded(408, "request head not sent in time") from None
            return None, b""
        if not chunk:
            return None, b""
        if not buf:
            deadline = min(deadline, time.monotonic() + HEAD_TIMEOUT)
        buf += chunk


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


def http_date(t: Optional[float] = None) -> str:
    """An IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), not depending on the locale."""
    g = time.gmtime(t)
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[g.tm_wday], g.tm_mday, _MONTHS[g.tm_mon - 1], g.tm_year, g.tm_hour,
        g.tm_min, g.tm_sec)


class MetricsServer:
    """Serves the agent's endpoints on ``addr`` once :meth:`serve_forever` runs.

    ``render``, ``platform``, ``web`` and ``health`` may be replaced while serving (a
    reload); each request reads them afresh.
    """

    def __init__(self, addr: Tuple[str, int], render: Callable[[], bytes],
                 platform: str, web: Optional[WebConfig] = None,
                 health: Optional[Callable[[], Tuple[bool, str]]] = None) -> None:
        self.render = render
        self.platform = platform
        self.web = web or WebConfig()
        self.health = health or (lambda: (True, "ok"))
        self.refused = 0  # connections closed at once: too many waiting
        self._refusal_logged = 0.0
        self._slots = threading.Lock()
        self._open: Dict[str, int] = {}  # connections being handled, per client address
        self._active: Set[socket.socket] = set()  # and their sockets
        # Accepted connections waiting for a handler thread: (socket, address, since).
        self._waiting: Deque[Tuple[socket.socket, Address, float]] = deque()
        self._stop = False
        self._stopped = threading.Event()  # set while serve_forever is not running
        self._stopped.set()
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(addr)
            self.socket.listen(BACKLOG)
            self.socket.setblocking(False)
        except OSError:
            self.socket.close()
            raise
        self.server_address: Address = self.socket.getsockname()
        # serve_forever sleeps in poll() on the socket and this pipe, which shutdown
        # writes to: no periodic wake-ups while nobody connects.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown`."""
        self._stopped.clear()
        try:
            poller = select.poll()
            poller.register(self.socket, select.POLLIN)
            poller.register(self._wake_r, select.POLLIN)
            while not self._stop:
                ready = [fd for fd, _ in poller.poll()]
                if self._wake_r in ready:
                    os.read(self._wake_r, 64)
                elif not self._stop:
                    self._accept()
        finally:
            self._stop = False
            self._stopped.set()

    def serve_in_thread(self) -> threading.Thread:
        self._stopped.clear()  # a shutdown right after this waits for the thread
        t = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        t.start()
        return t

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` and wait until it has returned."""
        self._stop = True
        if self._wake_w >= 0:
            with contextlib.suppress(BlockingIOError):  # full of earlier wake-ups
                os.write(self._wake_w, b"x")
        self._stopped.wait()

    def server_close(self) -> None:
        """Stop serving, close the listening socket and the connections waiting or being
        served."""
        self.shutdown()
        self.socket.close()
        if self._wake_w >= 0:
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1  # a number the next open may reuse
        with self._slots:
            while self._waiting:
                _close(self._waiting.popleft()[0])
            for sock in self._active:  # their handler threads then close them
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)  # not TLS's override

    def _accept(self) -> None:
        while True:
            try:
                sock, addr = self.socket.accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.debug("cannot accept a connection: %s", e)
                    time.sleep(0.1)  # the backlog stays readable: do not spin on it
                return
            # Without this, Nagle and the client's delayed ACK can hold a response's
            # last segment back 40 ms on a kept-alive connection.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ctx = self.web.ssl_context
            if ctx is not None:
                # The handshake runs in the handler's thread, so a slow client cannot
                # stall the accept loop.
                sock = ctx.wrap_socket(sock, server_side=True,
                                       do_handshake_on_connect=False)
            self.process_request(sock, addr)

    def process_request(self, sock: socket.socket, addr: Address) -> None:
        """Hand the connection to a handler thread, or queue it while none is free.

        At most MAX_CONNECTIONS handler threads run, MAX_PER_CLIENT for one address;
        up to MAX_WAITING more connections wait, and a freed thread takes the waiting
        connection of the address with the fewest being handled: a client holding
        many connections open does not lock the scraper out.
        """
        with self._slots:
            if not self._free_for(addr[0]):
                if len(self._waiting) < MAX_WAITING:
                    self._waiting.append((sock, addr, time.monotonic()))
                    return
                self._refuse(addr[0])
                _close(sock)
                return
            self._open[addr[0]] = self._open.get(addr[0], 0) + 1
        threading.Thread(target=self._handle_then_next, args=(sock, addr),
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

    def _handle_then_next(self, sock: socket.socket, addr: Address) -> None:
        while True:
            self._serve(sock, addr)
            with self._slots:
                host = addr[0]
                left = self._open.get(host, 1) - 1
                if left > 0:
                    self._open[host] = left
                else:
                    self._open.pop(host, None)
                picked = self._next_waiting()
                if picked is None:
                    return
                sock, addr = picked
                self._open[addr[0]] = self._open.get(addr[0], 0) + 1

    def _next_waiting(self) -> Optional[Tuple[socket.socket, Address]]:
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
            _close(w[0])
        return picked

    def _serve(self, sock: socket.socket, addr: Address) -> None:
        """Answer the requests of one connection until it closes, idles or errs."""
        host = addr[0]
        with self._slots:
            self._active.add(sock)
        try:
            sock.settimeout(HEAD_TIMEOUT)
            handshake = getattr(sock, "do_handshake", None)  # a TLS socket's
            if handshake is not None:
                handshake()
            buf = b""
            while True:
                head, buf = read_head(sock, buf)
                if head is None:
                    return
                sock.settimeout(IDLE_TIMEOUT)  # for sending the answer
                try:
                    req = parse_head(head)
                except BadRequest as e:
                    log.debug("bad request from %s: %s", host, e)
                    sock.sendall(self._response(e.status, ("%s\n" % e).encode(), TEXT))
                    return
                answer, code = self._answer(req, host)
                sock.sendall(answer)
                log.debug('%s "%s %s HTTP/%d.%d" %d', host, req.method, req.target,
                          req.version[0], req.version[1], code)
                if not req.keep_alive:
                    return
        except HeadLimitExceeded as e:
            log.debug("connection from %s dropped: %s", host, e)
            with contextlib.suppress(OSError):
                sock.settimeout(1.0)
                sock.sendall(self._response(e.status, ("%s\n" % e).encode(), TEXT))
        except OSError as e:  # ssl.SSLError is an OSError
            # Includes TLS clients that never shake hands: one debug line, no traceback.
            log.debug("connection from %s dropped: %s", host, e)
        except Exception:
            log.debug("connection from %s failed", host, exc_info=True)
        finally:
            with self._slots:
                self._active.discard(sock)
            _close(sock)

    def _answer(self, req: Request, client: str) -> Tuple[bytes, int]:
        """The response to ``req`` (headers, and the body unless HEAD) and its status."""
        if req.method not in ("GET", "HEAD"):
            return self._response(405, b"method not allowed\n", TEXT,
                                  {"Allow": "GET, HEAD"}, req), 405
        path, web = req.path, self.web
        if path != "/-/healthy" and web.users and web.failures.blocked(client):
            return self._response(429, b"", None, {"Retry-After": "%d" % web.failures.window},
                                  req), 429
        if path != "/-/healthy" and not web.authorized(req.headers.get("authorization"),
                                                       client):
            return self._response(401, b"", None, {
                "WWW-Authenticate": 'Basic realm="boardfleet-agent"'}, req), 401
        extra: Dict[str, str] = {}
        if path == "/metrics":
            try:
                body = self.render()
            except Exception:
                log.exception("scrape failed")
                code, body, ctype = 500, b"scrape failed\n", TEXT
            else:
                code, ctype = 200, CONTENT_TYPE
                extra["Vary"] = "Accept-Encoding"
                if accepts_gzip(req.headers.get("accept-encoding", "")):
                    body = gzip(body)
                    extra["Content-Encoding"] = "gzip"
        elif path == "/":
            code, ctype = 200, "text/html; charset=utf-8"
            body = (LANDING % (__version__, self.platform)).encode()
        elif path == "/-/healthy":
            ok, why = self.health()
            code, ctype = (200, TEXT) if ok else (503, TEXT)
            body = b"OK\n" if ok else ("unhealthy: %s\n" % why).encode()
        else:
            code, body, ctype = 404, b"not found\n", TEXT
        return self._response(code, body, ctype, extra, req), code

    def _response(self, code: int, body: bytes, ctype: Optional[str],
                  extra: Optional[Dict[str, str]] = None,
                  req: Optional[Request] = None) -> bytes:
        """Status line, headers and body; without ``req`` (a bad request) it closes."""
        lines = ["HTTP/1.1 %d %s" % (code, REASONS[code]), "Server: " + SERVER,
                 "Date: " + http_date()]
        if ctype is not None:
            lines.append("Content-Type: " + ctype)
        lines.append("Content-Length: %d" % len(body))
        for name, value in {**self.web.headers, **(extra or {})}.items():
            lines.append("%s: %s" % (name, value))
        if req is None or not req.keep_alive:
            lines.append("Connection: close")
        elif req.version < (1, 1):
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        return head if req is not None and req.method == "HEAD" else head + body


def _close(sock: socket.socket) -> None:
    """Close a connection: a FIN after what is left to send, then drop what the client
    sent unread, without which closing would reset the connection and could lose
    the answer (a 400 to a pipelined request, say)."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_WR)
        sock.setblocking(False)
        for _ in range(4):
            if not socket.socket.recv(sock, 65536):  # raw bytes, TLS or not
                break
    sock.close()
