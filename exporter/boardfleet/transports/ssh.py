"""SSH sessions over paramiko: key or password login, one long-lived ``sh`` per board.

Opening an exec channel costs the board a new session (about 0.1 s of sshd work per
command); a pooled session instead writes each framed command to the stdin of a shell
it started once.
"""

import logging
import os
import socket
import time
from typing import Any

import paramiko

from boardfleet.inventory import Board
from boardfleet.ssh import fingerprint
from boardfleet.transports import Frame, Session, TransportError
from boardfleet.transports.secrets import Credentials

# Output beyond this is a runaway board, not telemetry.
MAX_OUTPUT = 16 * 1024 * 1024

logging.getLogger("paramiko").setLevel(logging.CRITICAL)


class SSHSession(Session):
    def __init__(self, name: str, client: paramiko.SSHClient) -> None:
        self.name = name
        self.client = client
        self.chan: paramiko.Channel | None = None

    def run(self, command: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        try:
            frame = Frame(command)
            chan = self._shell(timeout)
            chan.sendall((frame.line + "\n").encode())
            return frame.output(_read_until(chan, frame, deadline))
        except TransportError as e:
            raise TransportError("%s: %s" % (self.name, e)) from None
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise TransportError("%s: SSH command failed: %s"
                                 % (self.name, type(e).__name__)) from None

    def _shell(self, timeout: float) -> paramiko.Channel:
        if self.chan is not None and not self.chan.closed and not self.chan.eof_received:
            return self.chan
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise TransportError("SSH connection lost")
        chan = transport.open_session(timeout=max(0.01, timeout))
        chan.settimeout(0.2)
        # stderr would fill paramiko's buffer unread: the board drops it.
        chan.exec_command("exec sh 2>/dev/null")
        self.chan = chan
        return chan

    def close(self) -> None:
        self.client.close()


def _read_until(chan: paramiko.Channel, frame: Frame, deadline: float) -> bytes:
    buf = b""
    while True:
        if time.monotonic() >= deadline:
            raise TransportError("no complete answer within the probe timeout")
        try:
            data = chan.recv(65536)
        except TimeoutError:
            continue
        if not data:
            raise TransportError("the board's shell exited")
        buf += data
        # Only the new bytes (and a sentinel's length before them) can hold the end.
        if frame.end.search(buf, max(0, len(buf) - len(data) - 32)):
            return buf
        if len(buf) > MAX_OUTPUT:
            raise TransportError("answer larger than %d bytes" % MAX_OUTPUT)


def connect_ssh(board: Board, creds: Credentials, timeout: float,
                known_hosts: str | None = None) -> SSHSession:
    """Log in to ``board``; host keys are checked against ``known_hosts`` when given
    (``None`` accepts any key: ``serve --insecure-accept-any-host-key`` only)."""
    client = paramiko.SSHClient()
    if known_hosts:
        try:
            if os.path.exists(known_hosts):  # created by agent install; none known yet
                client.load_host_keys(known_hosts)
        except (OSError, paramiko.SSHException) as e:
            raise TransportError("%s: cannot read known_hosts %s: %s"
                                 % (board.name, known_hosts, e)) from None
        client.set_missing_host_key_policy(_Refuse(known_hosts))
    else:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        sock = socket.create_connection((board.host, board.port), timeout=timeout)
        # Small request/response packets: without this, delayed ACKs add 40 ms a round.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.connect(
            board.host, port=board.port, sock=sock, username=creds.user or board.user,
            password=creds.secret(), key_filename=creds.key_file, timeout=timeout,
            banner_timeout=timeout, auth_timeout=timeout, channel_timeout=timeout,
            allow_agent=False, look_for_keys=False)
    except paramiko.BadHostKeyException as e:
        client.close()
        raise TransportError(
            "%s: host key CHANGED: %s has %s, the board offers %s; refusing to log in"
            % (board.name, known_hosts, fingerprint(e.expected_key), fingerprint(e.key))
        ) from None
    except _UnknownHostKey as e:
        client.close()
        raise TransportError("%s: %s" % (board.name, e)) from None
    except paramiko.AuthenticationException:
        client.close()
        raise TransportError("%s: SSH login refused" % board.name) from None
    except (paramiko.SSHException, OSError, EOFError, ValueError) as e:
        client.close()
        raise TransportError("%s: cannot connect over SSH: %s"
                             % (board.name, _reason(e))) from None
    return SSHSession(board.name, client)


class _UnknownHostKey(paramiko.SSHException):
    pass


class _Refuse(paramiko.MissingHostKeyPolicy):
    """Refuse boards missing from known_hosts, saying which key they offered."""

    def __init__(self, path: str) -> None:
        self.path = path

    def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
        raise _UnknownHostKey(
            "host key of %s (%s %s) is not in %s; refusing to log in (add it with "
            "'boardfleet agent install --accept-new-host-key' or ssh-keyscan)"
            % (hostname, key.get_name(), fingerprint(key), self.path))


def _reason(e: Exception) -> str:
    if isinstance(e, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return type(e).__name__
