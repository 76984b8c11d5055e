"""SSH sessions over paramiko: key or password login, one long-lived ``sh`` per board.

Opening an exec channel costs the board a new session (about 0.1 s of sshd work per
command); a pooled session instead writes each framed command to the stdin of a shell
it started once.
"""

import logging
import time

import paramiko

from boardfleet.inventory import Board
from boardfleet.ssh import SSHError, open_client
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
    """Log in to ``board`` through :func:`boardfleet.ssh.open_client` (the installer's
    connection: same host-key checks, keepalive and error words); ``known_hosts=None``
    accepts any key (``serve --insecure-accept-any-host-key``)."""
    try:
        client = open_client(board.host, board.port, creds.user or board.user,
                             known_hosts=known_hosts, key_filename=creds.key_file,
                             password=creds.secret(), timeout=timeout, user_keys=False,
                             check_host_keys=known_hosts is not None)
    except SSHError as e:
        raise TransportError("%s: %s" % (board.name, e)) from None
    return SSHSession(board.name, client)
