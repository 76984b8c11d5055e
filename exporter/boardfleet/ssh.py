"""SSH to a board with paramiko: host-key policy, commands, uploads.

:func:`open_client` is the one way boardfleet opens SSH to a board: ``agent install``
(:class:`Connection`, exec channels) and the fleet service's probes
(``transports.ssh``, a pooled shell) share its host-key checks, keepalive and errors.

Host keys are checked against ``~/.ssh/known_hosts`` and the project's known_hosts.
``accept_new`` trusts an unknown key on first use and saves it to the project file;
``fingerprint`` ("SHA256:...") pins the key instead. A changed key is always refused.
Uploads stream over an exec channel (``cat > tmp``), so boards without an SFTP server
(dropbear, busybox) work too.
"""

import base64
import hashlib
import os
import re
import shlex
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from boardfleet.inventory import atomic_write

_TARGET = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[^\]\s]+\]|[^:@\s\[\]]+)"
                     r"(?::(?P<port>\d{1,5}))?$")
_save_lock = threading.Lock()
# A board silent this long (no answer, unacknowledged data) is dead: the step fails.
DEAD_AFTER = 15.0


class SSHError(RuntimeError):
    """Connecting, authenticating or a host-key check failed; the message says which."""


class HostKeyError(SSHError):
    """The board's host key is unknown, changed, or not the pinned one."""


@dataclass
class Result:
    exit: int
    stdout: str
    stderr: str


def parse_target(text: str, default_user: str = "root") -> tuple[str, str, int]:
    """``[user@]host[:port]`` (IPv6 in brackets) as (user, host, port)."""
    m = _TARGET.match(text or "")
    port = int(m.group("port") or 22) if m else 0
    if not m or not 0 < port < 65536:
        raise ValueError("%r is not [user@]HOST[:PORT]" % text)
    return m.group("user") or default_user, m.group("host").strip("[]"), port


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:`` fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else "[%s]:%d" % (host, port)


class _Policy(paramiko.MissingHostKeyPolicy):
    """Called for keys not in known_hosts: pin, trust on first use, or refuse."""

    def __init__(self, pinned: str | None, accept_new: bool, save_to: str | None) -> None:
        self.pinned, self.accept_new, self.save_to = pinned, accept_new, save_to

    def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
        got = fingerprint(key)
        if self.pinned:
            if got != self.pinned:
                raise HostKeyError("host key of %s is %s, not the pinned %s: refusing to "
                                   "connect" % (hostname, got, self.pinned))
            return
        if not self.accept_new:
            raise HostKeyError("host key of %s (%s %s) is not in %s; check it and pass "
                               "--accept-new-host-key or --host-key-fingerprint %s"
                               % (hostname, key.get_name(), got, self.save_to or "known_hosts",
                                  got))
        if self.save_to:
            with _save_lock:
                old = Path(self.save_to).read_text() if os.path.exists(self.save_to) else ""
                line = "%s %s %s\n" % (hostname, key.get_name(), key.get_base64())
                # 0644 like ~/.ssh/known_hosts: the fleet service may run as another user.
                atomic_write(self.save_to, old + ("" if old.endswith("\n") or not old
                                                  else "\n") + line, mode=0o644)


def open_client(host: str, port: int, user: str, *, known_hosts: str | None = None,
                accept_new: bool = False, fingerprint: str | None = None,
                key_filename: str | None = None, password: str | None = None,
                timeout: float = 10.0, dead_after: float = DEAD_AFTER,
                user_keys: bool = True, check_host_keys: bool = True) -> paramiko.SSHClient:
    """A logged-in paramiko client: the one way boardfleet reaches a board over SSH.

    Host keys are checked against ``known_hosts`` (and, with ``user_keys``, the user's
    ``~/.ssh/known_hosts``); ``accept_new`` trusts an unknown key once and saves it,
    ``fingerprint`` pins it; a changed key is always refused. ``user_keys`` also allows
    ssh-agent and ``~/.ssh`` keys (the CLI; the fleet service logs in only with what
    secrets.yml gives). ``check_host_keys=False`` accepts any key (test setups only).
    The socket notices a dead board in about ``dead_after`` seconds (:func:`open_socket`).
    """
    client = paramiko.SSHClient()
    if not check_host_keys:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    else:
        if not fingerprint:
            system = os.path.expanduser("~/.ssh/known_hosts")
            if user_keys and os.path.exists(system):
                client.load_system_host_keys(system)
            if known_hosts and os.path.exists(known_hosts):
                try:  # the keys, not the file name: paramiko never rewrites the file
                    client.get_host_keys().load(known_hosts)
                except (OSError, paramiko.SSHException) as e:
                    raise SSHError("cannot read known_hosts %s: %s" % (known_hosts, _why(e))
                                   ) from None
        client.set_missing_host_key_policy(_Policy(fingerprint or None, accept_new,
                                                   known_hosts))
    try:
        sock = open_socket(host, port, timeout, dead_after)
    except OSError as e:
        client.close()
        raise SSHError("cannot connect to %s:%d: %s" % (host, port, _why(e))) from None
    try:
        client.connect(host, port=port, username=user, key_filename=key_filename,
                       password=password, timeout=timeout, banner_timeout=timeout,
                       auth_timeout=timeout, channel_timeout=timeout, allow_agent=user_keys,
                       look_for_keys=user_keys, sock=sock)
    except paramiko.BadHostKeyException as e:
        client.close()
        raise HostKeyError(
            "host key of %s CHANGED: %s has %s, the board offers %s; refusing to connect "
            "(remove the old key if the board was re-flashed)"
            % (known_hosts_name(host, port), known_hosts or "known_hosts",
               fingerprint_of(e.expected_key), fingerprint_of(e.key))) from None
    except HostKeyError:
        client.close()
        raise
    except paramiko.PasswordRequiredException:
        client.close()
        raise SSHError("the key %s is encrypted: add it to ssh-agent (ssh-add) or use "
                       "an unencrypted deploy key" % (key_filename or "in ~/.ssh")) from None
    except paramiko.AuthenticationException as e:
        client.close()
        hint = "" if key_filename or password or not user_keys else (
            " (no key given: pass --identity KEY, load one into ssh-agent, or use "
            "--ask-password)")
        raise SSHError("authentication as %s@%s failed: %s%s"
                       % (user, host, _why(e), hint)) from None
    except (paramiko.SSHException, OSError, EOFError, ValueError) as e:
        client.close()
        raise SSHError("cannot connect to %s:%d: %s" % (host, port, _why(e))) from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(max(1, int(dead_after / 3)))
    return client


class Connection:
    """One SSH connection to a board for exec-channel commands; a context manager."""

    def __init__(self, host: str, port: int = 22, user: str = "root", *,
                 known_hosts: str | None = None, accept_new: bool = False,
                 fingerprint: str | None = None, key_filename: str | None = None,
                 password: str | None = None, timeout: float = 10.0,
                 dead_after: float = DEAD_AFTER) -> None:
        self.host, self.port, self.user = host, port, user
        self.client = open_client(host, port, user, known_hosts=known_hosts,
                                  accept_new=accept_new, fingerprint=fingerprint,
                                  key_filename=key_filename, password=password,
                                  timeout=timeout, dead_after=dead_after)
        self.timeout = timeout

    def run(self, command: str, stdin: bytes = b"", timeout: float = 60.0) -> Result:
        """Run a shell command on the board, feeding ``stdin``; never raises on exit codes."""
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise SSHError("connection to %s is closed" % self.host)
        try:
            chan = transport.open_session(timeout=self.timeout)
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise SSHError("connection to %s lost: %s" % (self.host, _why(e))) from None
        try:
            chan.settimeout(timeout)
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            deadline = time.monotonic() + timeout
            while True:
                idle = True
                if chan.recv_ready():
                    out += chan.recv(65536)
                    idle = False
                if chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                    idle = False
                if idle:
                    if chan.exit_status_ready() and chan.eof_received:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    if not transport.is_active():
                        raise EOFError("the board stopped answering")
                    chan.status_event.wait(0.01)
            code = chan.recv_exit_status()
        except TimeoutError:
            raise SSHError("command on %s timed out after %.0fs: %s"
                           % (self.host, timeout, command[:80])) from None
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise SSHError("connection to %s lost: %s" % (self.host, _why(e))) from None
        finally:
            chan.close()
        return Result(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    def put(self, data: bytes, path: str, mode: int = 0o644) -> Result:
        """Write ``data`` to ``path`` on the board (through ``cat``, then ``chmod``)."""
        q = shlex.quote(path)
        return self.run("cat > %s && chmod %o %s" % (q, mode, q), stdin=data, timeout=300)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_socket(host: str, port: int, timeout: float, dead_after: float) -> socket.socket:
    """A TCP connection that notices a dead board in about ``dead_after`` seconds.

    Keepalive probes find a silent peer while we wait for output; ``TCP_USER_TIMEOUT``
    aborts when sent data (an upload) stays unacknowledged, instead of the kernel's
    default of about 15 minutes of retransmissions.
    """
    sock = socket.create_connection((host, port), timeout=timeout)
    # Small request/response packets: without this, delayed ACKs add 40 ms a round.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle = max(1, int(dead_after / 3))
    for opt, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", idle), ("TCP_KEEPCNT", 2),
                       ("TCP_USER_TIMEOUT", int(dead_after * 1000))):
        if hasattr(socket, opt):  # Linux; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)
    return sock


def _why(e: BaseException) -> str:
    """An exception as words: 'Connection refused', 'timed out', not '[Errno None]'."""
    if isinstance(e, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip()
    if isinstance(e, EOFError) or not text:
        return text or "the connection closed (board rebooted or sshd died)"
    return text


def fingerprint_of(key: paramiko.PKey | None) -> str:
    return fingerprint(key) if key is not None else "?"
