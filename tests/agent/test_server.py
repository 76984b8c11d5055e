"""The agent's HTTP server as a running process: auth, TLS, signals, concurrency."""

import base64
import concurrent.futures
import http.client
import http.server
import os
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest
from support.agent import agent_stderr, served_agent
from support.paths import FIXTURES

GENERIC = str(FIXTURES / "generic")


def _get(url: str, auth: str = "", context=None) -> str:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    with urllib.request.urlopen(req, timeout=10, context=context) as r:
        return r.read().decode()


def test_serves_the_same_metrics_as_once() -> None:
    with served_agent(GENERIC) as (base, _):
        text = _get(base + "/metrics")
        assert 'board_info{agent_version="0.1.0"' in text
        assert "board_temperature_celsius" in text
        assert "boardfleet agent" in _get(base + "/")
        with pytest.raises(urllib.error.HTTPError) as e:
            _get(base + "/nope")
        assert e.value.code == 404


def test_fifty_concurrent_scrapers_each_get_a_complete_answer() -> None:
    with served_agent(GENERIC) as (base, _), concurrent.futures.ThreadPoolExecutor(50) as pool:
        bodies = list(pool.map(lambda _: _get(base + "/metrics"), range(50)))
    for body in bodies:
        assert body.count("# TYPE board_cpu_seconds_total counter") == 1
        assert 'board_collector_success{collector="thermal"} 1.0' in body
        assert "\nprocess_max_fds " in body and body.endswith("\n")
        assert len(body.splitlines()) == len(bodies[0].splitlines())


def test_scrapes_on_one_kept_alive_connection_are_not_held_back() -> None:
    with served_agent(GENERIC) as (base, _):
        conn = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=10)
        latencies = []
        for i in range(20):
            started = time.monotonic()
            conn.request("GET", "/metrics" if i % 5 else "/nope")
            resp = conn.getresponse()
            body = resp.read()
            latencies.append(time.monotonic() - started)
            assert resp.status == (200 if i % 5 else 404)
            assert not resp.will_close
            assert b"board_cpu_seconds_total" in body or resp.status == 404
            if i == 0:
                sock = conn.sock
            assert conn.sock is sock  # the same TCP connection throughout
        conn.close()
    # Nagle's algorithm and the client's delayed ACK would hold every body back 40 ms,
    # as they hold the peer's, measured here in the same run: the fastest scrape comes
    # back in well under half the peer's fastest (the first request of each is left out:
    # Linux ACKs a new connection's first segments at once).
    peer = _held_back_peer_latencies(len(latencies))
    assert min(latencies[1:]) < min(peer[1:]) / 2, (latencies, peer)


class _TwoWrites(http.server.BaseHTTPRequestHandler):
    """Headers and body as two writes, without TCP_NODELAY: what Nagle holds back."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"board_cpu_seconds_total 1\n" * 100
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _held_back_peer_latencies(n: int) -> list:
    """Latencies of ``n`` requests on one kept-alive connection to a Nagle-bound server."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TwoWrites)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
        out = []
        for _ in range(n):
            started = time.monotonic()
            conn.request("GET", "/metrics")
            conn.getresponse().read()
            out.append(time.monotonic() - started)
        conn.close()
        return out
    finally:
        srv.shutdown()
        srv.server_close()


def test_basic_auth_and_tls_from_web_config(tmp_path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config:\n  cert_file: %s\n  key_file: '%s'\nbasic_auth_users:\n"
                   "  prometheus: %s\n" % (tmp_path / "cert.pem", tmp_path / "key.pem", hashed))
    ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    with served_agent(GENERIC, "--web.config.file", str(web), tls_context=ctx) as (base, _):
        assert base.startswith("https://")
        assert "board_cpu_seconds_total" in _get(base + "/metrics", "prometheus:s3cret", ctx)
        for bad in ("", "prometheus:wrong", "nobody:s3cret"):
            with pytest.raises(urllib.error.HTTPError) as e:
                _get(base + "/metrics", bad, ctx)
            assert e.value.code == 401
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            _get(base.replace("https", "http") + "/metrics", "prometheus:s3cret")


def test_bad_web_config_is_refused_at_start(tmp_path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  prometheus: plaintext\n")
    from support.agent import agent_cmd

    r = subprocess.run(agent_cmd("--sysroot", GENERIC, "--web.config.file", str(web),
                                 "--listen", "127.0.0.1:0"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "web.yml: basic_auth_users.prometheus must be a bcrypt hash" in r.stderr


def test_a_taken_port_is_named_at_start() -> None:
    """The bind error itself, not a failure of the cleanup after it."""
    import socket

    from support.agent import agent_cmd

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = "127.0.0.1:%d" % taken.getsockname()[1]
        r = subprocess.run(agent_cmd("--sysroot", GENERIC, "--listen", listen),
                           capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "cannot listen on %s: [Errno 98] Address already in use" % listen in r.stderr
    assert "Traceback" not in r.stderr


def test_sighup_reloads_config_and_sigterm_stops_cleanly(tmp_path) -> None:
    conf = tmp_path / "agent.toml"
    conf.write_text("[collectors.thermal]\nenabled = true\n")
    with served_agent(GENERIC, "--config", str(conf)) as (base, proc):
        assert "board_temperature_celsius" in _get(base + "/metrics")
        conf.write_text("[collectors.thermal]\nenabled = false\n")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "board_temperature_celsius" in _get(base + "/metrics"):
            assert time.monotonic() < deadline, "SIGHUP did not reload the config"
            time.sleep(0.05)
        # Reloads leave no thread or fd behind (samplers and wakeup pipes are closed).
        before = _fds_and_threads(proc.pid)
        for _ in range(10):
            proc.send_signal(signal.SIGHUP)
            time.sleep(0.2)
        assert "board_cpu_seconds_total" in _get(base + "/metrics")
        assert _fds_and_threads(proc.pid) == before
        conf.write_text("this is = not toml [")
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert "board_cpu_seconds_total" in _get(base + "/metrics")  # old config kept
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert "Traceback" not in agent_stderr(proc)


def _fds_and_threads(pid: int) -> tuple:
    """Steady fd and thread counts: the fewest over a second.

    A scrape's handler thread and socket outlive the response by a moment.
    """
    samples = []
    for _ in range(10):
        status = Path("/proc/%d/status" % pid).read_text()
        threads = int(status.split("Threads:")[1].split()[0])
        samples.append((len(os.listdir("/proc/%d/fd" % pid)), threads))
        time.sleep(0.1)
    return min(f for f, _ in samples), min(t for _, t in samples)
