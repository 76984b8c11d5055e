"""Secrets file, telnet framing and pool backoff, against real files and sockets."""

import os
import socket
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boardfleet.inventory import Board, InventoryError
from boardfleet.probe import with_prefix
from boardfleet.transports import TransportError
from boardfleet.transports.pool import SessionPool
from boardfleet.transports.secrets import (
    Credentials,
    Secrets,
    SecretsError,
    load_secrets,
)
from boardfleet.transports.ssh import connect_ssh
from boardfleet.transports.telnet import IAC, TelnetStream

PASSWORD = "pa55-very-secret"


def secrets_file(tmp_path: Path, text: str, mode: int = 0o600) -> str:
    p = tmp_path / "secrets.yml"
    p.write_text(text)
    p.chmod(mode)
    return str(p)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_secrets_readable_by_others_are_refused(tmp_path, mode):
    path = secrets_file(tmp_path, "default: {password: %s}\n" % PASSWORD, mode)
    with pytest.raises(SecretsError, match="chmod 600") as e:
        load_secrets(path)
    assert PASSWORD not in str(e.value)


def test_secrets_load_and_never_show_the_password(tmp_path):
    path = secrets_file(tmp_path, "default: {key_file: /k}\nboards:\n  b1: {user: admin, "
                                  "password: %s}\n" % PASSWORD)
    s = load_secrets(path)
    assert s.for_board("b1") == Credentials(user="admin", password=PASSWORD)
    assert s.for_board("other") == Credentials(key_file="/k")
    assert PASSWORD not in repr(s.for_board("b1")) and "***" in repr(s.for_board("b1"))


def test_bad_yaml_error_does_not_quote_the_secret(tmp_path):
    path = secrets_file(tmp_path, "default: {password: %s\n  - [" % PASSWORD)
    with pytest.raises(SecretsError) as e:
        load_secrets(path)
    assert PASSWORD not in str(e.value)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_any_secrets_text_loads_or_is_refused_cleanly(tmp_path, text):
    path = secrets_file(tmp_path, text)
    try:
        secrets = load_secrets(path)
    except SecretsError as e:
        assert path in str(e)
        return
    assert isinstance(secrets.for_board("any"), Credentials)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_telnet_stream_strips_any_bytes_without_crashing(data):
    a, b = socket.socketpair()
    with a, b:
        b.setblocking(False)
        stream = TelnetStream(a)
        out = stream._strip_commands(data)
        if IAC not in data:
            assert out == data


def test_telnet_option_negotiation_is_answered():
    a, b = socket.socketpair()
    with a, b:
        stream = TelnetStream(a)
        # WILL ECHO, DO TTYPE, subnegotiation, an escaped 0xff, text.
        out = stream._strip_commands(bytes([255, 251, 1, 255, 253, 24, 255, 250, 24, 1,
                                            255, 240, 255, 255]) + b"login: ")
        assert out == b"\xfflogin: "
        b.settimeout(2)
        assert b.recv(100) == bytes([255, 253, 1, 255, 252, 24])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_board_sysroot_validation_never_crashes(sysroot):
    try:
        board = Board(name="b", host="h", sysroot=sysroot)
        board.validate()
    except InventoryError:
        return
    assert with_prefix(["/proc/stat"], board.sysroot)[0].endswith("/proc/stat")
    assert not any(c in board.sysroot for c in "*?[ '\"$`\\")


def test_dead_board_is_not_redialled_during_backoff():
    """A listener that hangs up at once: one dial, then fast failures until backoff ends."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            accepted.append(time.monotonic())
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    # A backoff long enough that five failures at once fit in it on a loaded machine.
    pool = SessionPool({"ssh": connect_ssh}, Secrets(), backoff_base=3.0)
    board = Board(name="b", host="127.0.0.1", port=srv.getsockname()[1])
    try:
        for _ in range(5):
            started = time.monotonic()
            with pytest.raises(TransportError) as e:
                pool.run(board, "true", 60.0)
            assert time.monotonic() - started < 30.0  # fails at once, not at the timeout
            assert "b:" in str(e.value)
        dialled = len(accepted)
        time.sleep(3.1)
        with pytest.raises(TransportError):
            pool.run(board, "true", 2.0)
    finally:
        stop.set()
        t.join(2)
        srv.close()
        pool.close()
    assert dialled == 1
    assert len(accepted) == 2


def test_secrets_file_of_the_service_is_checked_before_serving(tmp_path):
    from boardfleet.cli import main

    path = secrets_file(tmp_path, "default: {password: %s}\n" % PASSWORD, 0o644)
    assert main(["serve", "--inventory", os.devnull, "--secrets", path]) == 2


def test_secrets_schema_names_file_board_and_key(tmp_path):
    path = secrets_file(tmp_path, "boards:\n  b1: {user: admin, pasword: %s}\n" % PASSWORD)
    with pytest.raises(SecretsError) as e:
        load_secrets(path)
    assert "%s: board 'b1': pasword: unknown key" % path in str(e.value)
    assert PASSWORD not in str(e.value)
    path = secrets_file(tmp_path, "boards:\n  b1: {password: [%s]}\n" % PASSWORD)
    with pytest.raises(SecretsError) as e:
        load_secrets(path)
    assert "board 'b1': password" in str(e.value) and PASSWORD not in str(e.value)
    path = secrets_file(tmp_path, "default: {password: 1234}\n")
    assert load_secrets(path).for_board("x").secret() == "1234"
