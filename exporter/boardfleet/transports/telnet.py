"""Telnet sessions to busybox ``telnetd``: login-prompt handling and framed commands.

After the ``login:``/``Password:`` exchange (skipped when the board opens a shell
directly), the shell runs a ``read``/``eval`` loop: no prompts, and no busybox line
editing, whose 1 KiB line limit would cut the batched read. Every command
is framed by sentinels (:class:`~boardfleet.transports.Frame`), so a terminal that
still echoes does no harm.
"""

import contextlib
import re
import socket
import time

from boardfleet.inventory import Board
from boardfleet.transports import Frame, Session, TransportError
from boardfleet.transports.secrets import Credentials

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
ECHO, SGA = 1, 3
MAX_OUTPUT = 16 * 1024 * 1024
LOGIN_RE = re.compile(rb"(?:login|username)\s*:\s*$", re.I)
PASSWORD_RE = re.compile(rb"password\s*:\s*$", re.I)
PROMPT_RE = re.compile(rb"[#$>%]\s*$")
# Terminal control sequences (busybox ash asks for the cursor position after its prompt).
ANSI_RE = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
REFUSED_RE = re.compile(rb"login incorrect|incorrect password|access denied|failed", re.I)


class TelnetStream:
    """A socket speaking just enough telnet: options refused except echo and SGA."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._pending = b""

    def send_line(self, text: str) -> None:
        self.sock.sendall(text.encode("utf-8").replace(b"\xff", b"\xff\xff") + b"\r\n")

    def read_until(self, patterns: list[re.Pattern[bytes]], deadline: float,
                   what: str) -> tuple[int, bytes]:
        """Read until one pattern matches the text so far; return (its index, text)."""
        buf = b""
        while True:
            plain = ANSI_RE.sub(b"", buf)
            for i, p in enumerate(patterns):
                if p.search(plain):
                    return i, buf
            if len(buf) > MAX_OUTPUT:
                raise TransportError("answer larger than %d bytes" % MAX_OUTPUT)
            buf += self._recv(deadline, what)

    def _recv(self, deadline: float, what: str) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TransportError("timed out waiting for %s" % what)
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TransportError("timed out waiting for %s" % what) from None
        except OSError as e:
            raise TransportError("connection failed: %s" % (e.strerror or type(e).__name__)) \
                from None
        if not data:
            raise TransportError("connection closed while waiting for %s" % what)
        return self._strip_commands(self._pending + data)

    def _strip_commands(self, data: bytes) -> bytes:
        """Drop telnet commands from ``data``, answering option negotiation."""
        out = bytearray()
        replies = bytearray()
        i = 0
        self._pending = b""
        while i < len(data):
            b = data[i]
            if b != IAC:
                out.append(b)
                i += 1
                continue
            if i + 1 >= len(data):
                self._pending = data[i:]
                break
            cmd = data[i + 1]
            if cmd == IAC:
                out.append(IAC)
                i += 2
            elif cmd in (DO, DONT, WILL, WONT):
                if i + 2 >= len(data):
                    self._pending = data[i:]
                    break
                opt = data[i + 2]
                if cmd == DO:
                    replies += bytes((IAC, WILL if opt == SGA else WONT, opt))
                elif cmd == WILL:
                    replies += bytes((IAC, DO if opt in (ECHO, SGA) else DONT, opt))
                i += 3
            elif cmd == SB:
                end = data.find(bytes((IAC, SE)), i + 2)
                if end == -1:
                    self._pending = data[i:]
                    break
                i = end + 2
            else:
                i += 2
        if replies:
            self.sock.sendall(bytes(replies))
        return bytes(out)


class TelnetSession(Session):
    def __init__(self, name: str, stream: TelnetStream) -> None:
        self.name = name
        self.stream = stream

    def run(self, command: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        try:
            frame = Frame(command)
            self.stream.send_line(frame.line)
            _, raw = self.stream.read_until([frame.end], deadline, "command output")
            return frame.output(raw.replace(b"\r\n", b"\n"))
        except TransportError as e:
            raise TransportError("%s: %s" % (self.name, e)) from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.sock.close()


def connect_telnet(board: Board, creds: Credentials, timeout: float) -> TelnetSession:
    """Connect and log in; the password is sent only after a ``Password:`` prompt."""
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((board.host, board.port), timeout=timeout)
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise TransportError("%s: cannot connect over telnet: %s" % (board.name, reason)) \
            from None
    stream = TelnetStream(sock)
    try:
        _login(stream, creds.user or board.user, creds.secret(), deadline)
        # Quiet, newline-clean, non-interactive shell (stty may be absent: harmless).
        stream.send_line("stty -echo -onlcr -icanon min 1 time 0 2>/dev/null; "
                         "echo BF\"\"PIPE; while IFS= read -r l; do eval \"$l\"; done")
        stream.read_until([re.compile(rb"BFPIPE\r?\n")], deadline, "the shell")
        stream.send_line('echo BF""READY')
        stream.read_until([re.compile(rb"BFREADY\r?\n")], deadline, "the shell")
    except TransportError as e:
        sock.close()
        raise TransportError("%s: %s" % (board.name, e)) from None
    return TelnetSession(board.name, stream)


def _login(stream: TelnetStream, user: str, password: str | None, deadline: float) -> None:
    i, _ = stream.read_until([LOGIN_RE, PASSWORD_RE, PROMPT_RE], deadline, "a login prompt")
    if i == 2:
        return  # telnetd -l /bin/sh: no login
    if i == 0:
        stream.send_line(user)
        i, _ = stream.read_until([PASSWORD_RE, PROMPT_RE, LOGIN_RE], deadline,
                                 "a password prompt")
        if i == 1:
            return
        if i == 2:
            raise TransportError("telnet login refused")
    if password is None:
        raise TransportError("telnet asks for a password and the secrets file has none")
    stream.send_line(password)
    i, _ = stream.read_until([PROMPT_RE, REFUSED_RE, LOGIN_RE], deadline, "a shell prompt")
    if i != 0:
        raise TransportError("telnet login refused")
