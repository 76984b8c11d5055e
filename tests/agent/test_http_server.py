"""The agent's own HTTP/1.1 server (issue 18): request parsing and the protocol on the wire.

Requests go over raw sockets, so that what the server sends (status lines, headers,
when it closes) is seen as sent.
"""

import contextlib
import email.utils
import gzip
import itertools
import os
import re
import socket
import subprocess
import sys
import textwrap
from typing import Dict, Iterator, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.paths import REPO

import boardfleet_agent.web.server as server_mod
from boardfleet_agent.exposition import CONTENT_TYPE
from boardfleet_agent.web.config import WebConfig
from boardfleet_agent.web.request import BadRequest, parse_head
from boardfleet_agent.web.server import MAX_REQUEST_HEAD, MetricsServer, http_date

HANG = 30.0
BODY = b"board_up 1\n" * 50
CLOSING = b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    srv = MetricsServer(("127.0.0.1", 0), lambda: BODY, "generic",
                        WebConfig(headers={"X-Frame-Options": "deny"}))
    srv.serve_in_thread()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


class Response:
    def __init__(self, status: int, headers: Dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


def read_response(f, head_only: bool = False) -> Response | None:  # type: ignore[no-untyped-def]
    """One response from a socket's file, or None at EOF."""
    line = f.readline()
    if not line:
        return None
    version, status, _ = line.decode("latin-1").split(" ", 2)
    assert version == "HTTP/1.1"
    headers = {}
    while True:
        line = f.readline().decode("latin-1")
        assert line.endswith("\r\n")
        if line == "\r\n":
            break
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    body = b"" if head_only else f.read(int(headers["content-length"]))
    return Response(int(status), headers, body)


def exchange(port: int, data: bytes, head_only: bool = False) -> Tuple[list, bool]:
    """Send ``data``, read responses until the server closes or goes quiet for 1 s:
    (responses, whether the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=HANG) as s:
        s.sendall(data)
        s.settimeout(1.0)
        f = s.makefile("rb")
        out = []
        try:
            while True:
                r = read_response(f, head_only)
                if r is None:
                    return out, True
                out.append(r)
        except TimeoutError:
            return out, False
        except ConnectionResetError:
            return out, True


def test_get_metrics_on_http11_keeps_the_connection(port: int) -> None:
    (r,), closed = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not closed
    assert (r.status, r.body) == (200, BODY)
    assert r.headers["content-type"] == CONTENT_TYPE
    assert r.headers["content-length"] == str(len(BODY))
    assert r.headers["x-frame-options"] == "deny"
    assert r.headers["server"].startswith("boardfleet-agent/")
    assert email.utils.parsedate_to_datetime(r.headers["date"]).tzinfo is not None
    assert "connection" not in r.headers


def test_pipelined_requests_are_answered_in_order(port: int) -> None:
    got, _ = exchange(port, b"GET /metrics HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n"
                            b"GET /-/healthy HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert [r.status for r in got] == [200, 404, 200]
    assert got[2].headers["connection"] == "close"


@pytest.mark.parametrize("request_head, closes", [
    (b"GET / HTTP/1.0\r\n\r\n", True),
    (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", True),  # a body it does not read
    (b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", True),
    (b"\r\n\r\nGET / HTTP/1.1\n\n", False),  # leading empty lines, bare LFs
])
def test_connection_kept_or_closed(port: int, request_head: bytes, closes: bool) -> None:
    (r,), closed = exchange(port, request_head)
    assert r.status == 200 and b"boardfleet agent" in r.body
    assert closed is closes
    assert (r.headers.get("connection", "").lower() == "close") is closes
    if b"HTTP/1.0" in request_head and not closes:
        assert r.headers["connection"] == "keep-alive"


def test_head_sends_the_headers_of_get_without_a_body(port: int) -> None:
    (r, after), _ = exchange(port, b"HEAD /metrics HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
                                   b"HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n",
                         head_only=True)
    assert r.status == 200 and r.headers["content-encoding"] == "gzip"
    assert r.headers["content-length"] == str(len(server_mod.gzip(BODY)))
    assert after.headers["content-length"] == str(len(BODY))  # nothing sent between


def test_gzip_and_its_length(port: int) -> None:
    (r,), _ = exchange(port, b"GET /metrics HTTP/1.1\r\nAccept-Encoding: gzip\r\n"
                             b"Connection: close\r\n\r\n")
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(r.body) == BODY


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE", b"OPTIONS", b"BREW"])
def test_other_methods_get_405_with_allow(port: int, method: bytes) -> None:
    (r,), _ = exchange(port, method + b" /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert r.status == 405 and r.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("request_head, status", [
    (b"GET /metrics\r\n\r\n", 400),  # HTTP/0.9
    (b"GET  /metrics HTTP/1.1\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1 \r\n\r\n", 400),
    (b"GET /me trics HTTP/1.1\r\n\r\n", 400),
    (b"G(T /metrics HTTP/1.1\r\n\r\n", 400),
    (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
    (b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", 400),  # space before the colon
    (b"GET /metrics HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n", 400),  # obs-fold
    (b"GET /metrics HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # TLS to plain HTTP
])
def test_malformed_requests_get_an_error_and_a_close(port: int, request_head: bytes,
                                                     status: int) -> None:
    (r,), closed = exchange(port, request_head + CLOSING)
    assert r.status == status and r.headers["connection"] == "close"
    assert closed  # the request after it is not read
    assert exchange(port, CLOSING)[0][0].body == BODY


def test_request_targets(port: int) -> None:
    got, _ = exchange(port, b"GET /metrics?x=1 HTTP/1.1\r\n\r\n"
                            b"GET http://board:9100/metrics HTTP/1.1\r\n\r\n"
                            b"GET HTTP://board HTTP/1.1\r\n\r\n"
                            b"GET //metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert [r.status for r in got] == [200, 200, 200, 404]
    assert got[2].headers["content-type"].startswith("text/html")


def test_a_head_past_the_limit_gets_431(port: int) -> None:
    big = b"GET / HTTP/1.1\r\nX-A: " + b"a" * MAX_REQUEST_HEAD + b"\r\n\r\n"
    (r,), closed = exchange(port, big)
    assert r.status == 431 and closed


def test_an_idle_kept_alive_connection_is_closed(port: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_mod, "IDLE_TIMEOUT", 0.2)
    with socket.create_connection(("127.0.0.1", port), timeout=HANG) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        f = s.makefile("rb")
        assert read_response(f).status == 200  # type: ignore[union-attr]
        assert f.read() == b""  # EOF, no 408: the client sent nothing more


def test_a_slow_head_gets_408(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_mod, "HEAD_TIMEOUT", 0.2)
    with socket.create_connection(("127.0.0.1", port), timeout=HANG) as s:
        s.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
        f = s.makefile("rb")
        assert read_response(f).status == 408  # type: ignore[union-attr]
        assert f.read() == b""


def test_auth_refusals_carry_the_configured_headers() -> None:
    srv = MetricsServer(("127.0.0.1", 0), lambda: BODY, "generic",
                        WebConfig(users={"p": "$2b$04$x"}, checker=lambda p, h: False,
                                  headers={"X-Frame-Options": "deny"}))
    srv.serve_in_thread()
    try:
        (r, healthy), closed = exchange(srv.server_address[1],
                                        b"GET /metrics HTTP/1.1\r\n\r\nGET /-/healthy HTTP/1.1"
                                        b"\r\n\r\n")
    finally:
        srv.shutdown()
        srv.server_close()
    assert r.status == 401 and r.headers["x-frame-options"] == "deny"
    assert r.headers["www-authenticate"] == 'Basic realm="boardfleet-agent"'
    assert healthy.status == 200 and not closed  # /-/healthy needs no login


def test_server_close_closes_kept_alive_connections() -> None:
    srv = MetricsServer(("127.0.0.1", 0), lambda: BODY, "generic")
    srv.serve_in_thread()
    with socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=HANG) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        f = s.makefile("rb")
        assert read_response(f).status == 200  # type: ignore[union-attr]
        srv.shutdown()
        srv.server_close()
        assert f.read() == b""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=HANG)


def test_shutdown_without_serving_returns_and_a_taken_port_raises() -> None:
    srv = MetricsServer(("127.0.0.1", 0), bytes, "generic")
    srv.shutdown()
    with pytest.raises(OSError) as e:
        MetricsServer(srv.server_address, bytes, "generic")
    assert "Address already in use" in str(e.value)
    srv.server_close()


def test_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        srv = MetricsServer(("::1", 0), lambda: BODY, "generic")
    except OSError as e:
        pytest.skip("no IPv6 loopback: %s" % e)
    srv.serve_in_thread()
    try:
        with socket.create_connection(("::1", srv.server_address[1]), timeout=HANG) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
            assert read_response(s.makefile("rb")).body == BODY  # type: ignore[union-attr]
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("t", [0, 784111777, 1700000000.5, 4102444800])
def test_http_date_is_an_imf_fixdate(t: float) -> None:
    assert http_date(t) == email.utils.formatdate(t, usegmt=True)


def test_parse_head_reads_fields() -> None:
    req = parse_head(b"GET /metrics?a=b HTTP/1.1\r\nHost: board\r\nAccept-Encoding:  gzip \r\n"
                     b"X-A: 1\r\nx-a: 2")
    assert (req.method, req.target, req.path, req.version) == (
        "GET", "/metrics?a=b", "/metrics", (1, 1))
    assert req.headers == {"host": "board", "accept-encoding": "gzip", "x-a": "1, 2"}
    assert req.keep_alive


@given(st.binary(max_size=300))
@settings(max_examples=500, deadline=None)
def test_parse_head_of_any_bytes_is_a_request_or_bad_request(data: bytes) -> None:
    try:
        req = parse_head(data)
    except BadRequest as e:
        assert e.status in (400, 505)
    else:
        assert req.method and req.path and req.version[0] == 1


class Chunks:
    """A socket whose recv hands out the given chunks, then EOF."""

    def __init__(self, chunks: list) -> None:
        self.chunks = chunks

    def settimeout(self, _timeout: float) -> None:
        pass

    def recv(self, _size: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


HEAD_LINES = st.lists(st.sampled_from([b"GET /metrics HTTP/1.1", b"Host: x", b"X-A: \r",
                                       b"Connection: close", b"a" * 40]),
                      min_size=1, max_size=4)


@given(st.lists(st.tuples(HEAD_LINES, st.sampled_from([b"\r\n", b"\n"]), st.booleans()),
                min_size=1, max_size=4), st.lists(st.integers(0, 400), max_size=20))
@settings(max_examples=300, deadline=None)
def test_heads_read_alike_however_the_bytes_arrive(requests: list, cuts: list) -> None:
    """Pipelined heads, split anywhere (a line end, even CR from LF), come out whole."""
    stream = b"".join((eol if blank else b"") + eol.join(lines) + eol + eol
                      for lines, eol, blank in requests)
    cuts = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    sock = Chunks([stream[a:b] for a, b in itertools.pairwise(cuts) if b > a])
    heads, buf = [], b""
    while True:
        head, buf = server_mod.read_head(sock, buf)  # type: ignore[arg-type]
        if head is None:
            break
        heads.append(head)
    # Without the last line's LF and one CR before it ("X-A: \r" "\n" reads as CR LF).
    assert heads == [re.sub(b"\r?\n\\Z", b"", eol.join(lines) + eol)
                     for lines, eol, _ in requests]


# No HEAD: its answer has a Content-Length but no body, which exchange() cannot tell.
TOKENS = st.sampled_from([b"GET", b"POST", b" ", b"/metrics", b"/", b"HTTP/1.1",
                          b"HTTP/1.0", b"HTTP/2.0", b"\r\n", b"\n", b"\r", b":", b"Host",
                          b"Connection", b"close", b"keep-alive", b"Content-Length",
                          b"\t", b"\x00", b"\xff", b"?", b"http://h"])
HEADS = st.lists(TOKENS | st.binary(max_size=5), max_size=30).map(b"".join)


@given(HEADS)
@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_request_head_gets_an_answer_and_the_server_serves_on(port: int,
                                                                 data: bytes) -> None:
    got, closed = exchange(port, data + b"\r\n\r\nGET /end HTTP/1.1\r\nConnection: close"
                                        b"\r\n\r\n")
    assert closed and got
    assert all(r.status in (200, 400, 404, 405, 505) for r in got)
    # Answered up to the first malformed request, which ends the connection.
    assert got[-1].status in (400, 404, 505)
    assert all(r.status not in (400, 505) for r in got[:-1])
    (r,), _ = exchange(port, b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert r.body == BODY


HTTP_MODULES = ("http.server", "http.client", "socketserver", "email", "ssl", "hashlib")
SERVE_ONCE = textwrap.dedent("""\
    import socket, sys
    import boardfleet_agent.cli
    from boardfleet_agent.web.server import MetricsServer
    srv = MetricsServer(("127.0.0.1", 0), lambda: b"board_up 1\\n", "generic")
    srv.serve_in_thread()
    s = socket.create_connection(srv.server_address)
    s.sendall(b"GET /metrics HTTP/1.1\\r\\nConnection: close\\r\\n\\r\\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    srv.shutdown()
    srv.server_close()
    print(data.split(b"\\r\\n")[0].decode(), data.endswith(b"board_up 1\\n"))
    print(" ".join(m for m in %r if m in sys.modules))
    """) % (HTTP_MODULES,)


def _serve_once(python: str, pythonpath: str) -> list:
    env = dict(os.environ, PYTHONPATH=pythonpath)
    r = subprocess.run([python, "-c", SERVE_ONCE], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_serving_loads_no_http_email_or_ssl_module() -> None:
    assert _serve_once(sys.executable, str(REPO / "agent")) == ["HTTP/1.1 200 OK True", ""]


def test_serving_on_python38(py38_path: str) -> None:
    python, site = py38_path.split(os.pathsep)
    assert _serve_once(python, site + os.pathsep + str(REPO / "agent")) == [
        "HTTP/1.1 200 OK True", ""]


def test_server_close_without_shutdown_stops_serving() -> None:
    srv = MetricsServer(("127.0.0.1", 0), bytes, "generic")
    t = srv.serve_in_thread()
    srv.server_close()
    t.join(HANG)
    assert not t.is_alive()


def test_closing_twice_writes_to_no_reused_descriptor(tmp_path) -> None:
    srv = MetricsServer(("127.0.0.1", 0), bytes, "generic")
    srv.serve_in_thread()
    srv.shutdown()
    srv.server_close()
    with open(tmp_path / "f", "wb"):  # may take the wake-up pipe's old number
        srv.shutdown()
        srv.server_close()
    assert (tmp_path / "f").read_bytes() == b""


def test_past_the_caps_a_connection_waits_and_past_the_queue_is_refused_and_logged(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(server_mod, "MAX_PER_CLIENT", 1)
    monkeypatch.setattr(server_mod, "MAX_WAITING", 1)
    srv = MetricsServer(("127.0.0.1", 0), lambda: BODY, "generic")
    srv.serve_in_thread()
    port = srv.server_address[1]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=HANG) as first:
            first.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert read_response(first.makefile("rb")).status == 200  # type: ignore[union-attr]
            waiting = socket.create_connection(("127.0.0.1", port), timeout=HANG)
            waiting.sendall(CLOSING)
            with socket.create_connection(("127.0.0.1", port), timeout=HANG) as refused, \
                    contextlib.suppress(ConnectionResetError):
                assert refused.recv(100) == b""
            assert srv.refused == 1
            assert any("refusing connections: 1 handled (1 from 127.0.0.1), 1 waiting"
                       in r.getMessage() for r in caplog.records)
        # The first connection closed: its thread takes the waiting one.
        with waiting:
            assert read_response(waiting.makefile("rb")).body == BODY  # type: ignore[union-attr]
    finally:
        srv.shutdown()
        srv.server_close()
