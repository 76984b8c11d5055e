"""Torture: an HTTP front a board can afford (issue 13, point 3).

Slow and hostile clients (slowloris, huge headers, password guessing) hold bounded
threads and memory, are cut off, and do not lock out the scraper. Hostile clients
connect from 127.0.0.2, the scraper from 127.0.0.1 (both loopback).
"""

import base64
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Iterator, List, Tuple

import bcrypt
import pytest

import boardfleet_agent.web.server as server_mod
from boardfleet_agent.web.config import WebConfig, bcrypt_checker
from boardfleet_agent.web.server import MAX_PER_CLIENT, MAX_WAITING, MetricsServer

HANG = 30.0
BODY = b"board_up 1\n"


@pytest.fixture
def server() -> Iterator[Tuple[MetricsServer, int]]:
    srv = MetricsServer(("127.0.0.1", 0), lambda: BODY, "generic")
    srv.serve_in_thread()
    yield srv, srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def connect(port: int, source: str = "127.0.0.2") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=HANG,
                                 source_address=(source, 0))
    return s


def scrape(port: int, auth: str = "") -> Tuple[int, bytes]:
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % port)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=HANG) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def closed_by_server(s: socket.socket) -> bool:
    """Whether the server closed the connection (read EOF or reset within HANG)."""
    s.settimeout(HANG)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def wait_for(check, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + HANG
    while not check():
        assert time.monotonic() < end, "gave up waiting for " + what
        time.sleep(0.02)


def test_slowloris_holds_bounded_threads_and_the_scraper_still_gets_through(
        server: Tuple[MetricsServer, int]) -> None:
    srv, port = server
    before = threading.active_count()
    held: List[socket.socket] = []
    try:
        for _ in range(MAX_PER_CLIENT + MAX_WAITING + 20):
            s = connect(port)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never ends its head
            held.append(s)
        # One client: MAX_PER_CLIENT handler threads, MAX_WAITING queued, the rest closed.
        wait_for(lambda: srv.refused >= 20, "the connections past the queue to be refused")
        assert threading.active_count() <= before + MAX_PER_CLIENT
        assert scrape(port) == (200, BODY)  # another address: a thread of its own
    finally:
        for s in held:
            s.close()


def test_concurrent_scrapes_past_the_per_client_cap_wait_their_turn(
        server: Tuple[MetricsServer, int]) -> None:
    _, port = server
    results: List[Tuple[int, bytes]] = []
    threads = [threading.Thread(target=lambda: results.append(scrape(port)))
               for _ in range(3 * MAX_PER_CLIENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG)
    assert results == [(200, BODY)] * len(threads)


def test_slow_request_head_is_cut_off(server: Tuple[MetricsServer, int],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _, port = server
    monkeypatch.setattr(server_mod, "HEAD_TIMEOUT", 0.5)
    s = connect(port)
    stop = threading.Event()

    def trickle() -> None:  # one byte at a time, each well within any socket timeout
        try:
            for b in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 10000:
                if stop.wait(0.05):
                    return
                s.send(bytes([b]))
        except OSError:
            pass

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        assert closed_by_server(s)
    finally:
        stop.set()
        s.close()


def test_huge_request_head_is_refused_unbuffered(server: Tuple[MetricsServer, int]) -> None:
    _, port = server
    s = connect(port)
    head = b"GET /metrics HTTP/1.1\r\n" + b"X-Big: " + b"a" * 60000 + b"\r\n"
    try:
        for _ in range(100):  # 6 MB offered; the server reads at most 16 KB of it
            s.sendall(head)
    except OSError:
        pass  # reset by the server: what we want
    assert closed_by_server(s)
    s.close()
    assert scrape(port) == (200, BODY)


def test_tls_client_that_never_handshakes_is_dropped_quietly(
        monkeypatch: pytest.MonkeyPatch, tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    import ssl
    import subprocess

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(tmp_path / "c.pem")], check=True, capture_output=True,
                   timeout=60)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
    monkeypatch.setattr(server_mod, "HEAD_TIMEOUT", 0.5)  # for the handshake
    srv = MetricsServer(("127.0.0.1", 0), lambda: BODY, "generic", WebConfig(ctx))
    srv.serve_in_thread()
    try:
        s = connect(srv.server_address[1])
        assert closed_by_server(s)
        s.close()
    finally:
        srv.shutdown()
        srv.server_close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.fixture
def auth_server() -> Iterator[Tuple[MetricsServer, int, List[str]]]:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    real = bcrypt_checker()
    checked: List[str] = []

    def counting(password: str, hashed: str) -> bool:
        checked.append(password)
        return real(password, hashed)

    srv = MetricsServer(("127.0.0.1", 0), lambda: BODY, "generic",
                        WebConfig(users={"prometheus": hashed}, checker=counting))
    srv.serve_in_thread()
    yield srv, srv.server_address[1], checked
    srv.shutdown()
    srv.server_close()


def test_password_guessing_is_rate_limited_and_logged(
        auth_server: Tuple[MetricsServer, int, List[str]],
        caplog: pytest.LogCaptureFixture) -> None:
    srv, port, checked = auth_server
    caplog.set_level(logging.WARNING, logger="boardfleet.agent")
    limit = srv.web.failures.limit
    for i in range(limit):
        assert scrape(port, "prometheus:guess%d" % i)[0] == 401
    assert len(checked) == limit
    # Blocked now: no bcrypt work at all, even for the right password.
    assert scrape(port, "prometheus:guess-more")[0] == 429
    assert scrape(port, "prometheus:s3cret")[0] == 429
    assert len(checked) == limit
    messages = [r.getMessage() for r in caplog.records]
    assert any("failed login from 127.0.0.1" in m for m in messages)
    assert any("refused for the rest of it" in m for m in messages)
    assert srv.web.failures.total == limit


def test_unknown_user_costs_a_bcrypt_check_like_a_known_one(
        auth_server: Tuple[MetricsServer, int, List[str]]) -> None:
    """Constant-time lookup: a refusal takes a bcrypt check whether the user exists."""
    _, port, checked = auth_server
    assert scrape(port, "nobody:s3cret")[0] == 401
    assert scrape(port, "prometheus:wrong")[0] == 401
    assert checked == ["s3cret", "wrong"]
    assert scrape(port, "prometheus:s3cret") == (200, BODY)
