"""SSH sessions over paramiko: key or password login, one exec channel per command."""

import logging
import socket
import time

import paramiko

from boardfleet.inventory import Board
from boardfleet.transports import Session, TransportError
from boardfleet.transports.secrets import Credentials

# Output beyond this is a runaway board, not telemetry.
MAX_OUTPUT = 16 * 1024 * 1024

logging.getLogger("paramiko").setLevel(logging.CRITICAL)


class SSHSession(Session):
    def __init__(self, name: str, client: paramiko.SSHClient) -> None:
        self.name = name
        self.client = client

    def run(self, command: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise TransportError("%s: SSH connection lost" % self.name)
        try:
            chan = transport.open_session(timeout=max(0.01, timeout))
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise TransportError("%s: cannot open SSH channel: %s"
                                 % (self.name, type(e).__name__)) from None
        try:
            chan.settimeout(0.2)
            chan.exec_command(command)
            return _read_all(self.name, chan, deadline)
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise TransportError("%s: SSH command failed: %s"
                                 % (self.name, type(e).__name__)) from None
        finally:
            chan.close()

    def close(self) -> None:
        self.client.close()


def _read_all(name: str, chan: paramiko.Channel, deadline: float) -> str:
    chunks = []
    size = 0
    while True:
        if time.monotonic() >= deadline:
            raise TransportError("%s: no complete answer within the probe timeout" % name)
        try:
            data = chan.recv(65536)
        except TimeoutError:
            continue
        if not data:
            break
        chunks.append(data)
        size += len(data)
        if size > MAX_OUTPUT:
            raise TransportError("%s: answer larger than %d bytes" % (name, MAX_OUTPUT))
    return b"".join(chunks).decode("utf-8", "replace")


def connect_ssh(board: Board, creds: Credentials, timeout: float,
                known_hosts: str | None = None) -> SSHSession:
    """Log in to ``board``; host keys are checked against ``known_hosts`` when given."""
    client = paramiko.SSHClient()
    if known_hosts:
        client.load_host_keys(known_hosts)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    else:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(
            board.host, port=board.port, username=creds.user or board.user,
            password=creds.password, key_filename=creds.key_file, timeout=timeout,
            banner_timeout=timeout, auth_timeout=timeout, channel_timeout=timeout,
            allow_agent=False, look_for_keys=False)
    except paramiko.AuthenticationException:
        client.close()
        raise TransportError("%s: SSH login refused" % board.name) from None
    except (paramiko.SSHException, OSError, EOFError, ValueError) as e:
        client.close()
        raise TransportError("%s: cannot connect over SSH: %s"
                             % (board.name, _reason(e))) from None
    return SSHSession(board.name, client)


def _reason(e: Exception) -> str:
    if isinstance(e, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return type(e).__name__
