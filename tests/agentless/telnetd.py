"""A small telnetd for tests, behaving like busybox ``telnetd`` + ``login``.

``login:`` and ``Password:`` prompts, then the given shell on a pseudo-terminal.
Run it inside a board's network namespace::

    telnetd.py ADDRESS PORT USER PASSWORD_FILE SHELL [ARG...]

It serves until killed; each session ends when its shell exits or the client leaves.
"""

import contextlib
import os
import pty
import select
import socket
import sys
import threading

IAC, WILL, WONT, DO, DONT, SB, SE = 255, 251, 252, 253, 254, 250, 240
ECHO, SGA = 1, 3


def strip_telnet(data: bytes) -> bytes:
    """Client bytes without telnet commands; CR LF and CR NUL become CR (as telnetd)."""
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == IAC and i + 1 < len(data):
            cmd = data[i + 1]
            if cmd == IAC:
                out.append(IAC)
                i += 2
            elif cmd == SB:
                end = data.find(bytes((IAC, SE)), i)
                i = len(data) if end == -1 else end + 2
            else:
                i += 3 if cmd in (WILL, WONT, DO, DONT) else 2
            continue
        out.append(b)
        i += 1
        if b == 13 and i < len(data) and data[i] in (0, 10):
            i += 1
    return bytes(out)


def read_line(conn: socket.socket, limit: int = 256) -> str | None:
    buf = b""
    while len(buf) < limit:
        chunk = conn.recv(256)
        if not chunk:
            return None
        buf += strip_telnet(chunk)
        for sep in (b"\r", b"\n"):
            if sep in buf:
                return buf.split(sep)[0].decode("utf-8", "replace")
    return None


def session(conn: socket.socket, user: str, password: str, shell: list[str]) -> None:
    conn.settimeout(30)
    try:
        conn.sendall(bytes((IAC, WILL, ECHO, IAC, WILL, SGA)) + b"\r\ntestboard login: ")
        name = read_line(conn)
        conn.sendall(b"\r\nPassword: ")
        given = read_line(conn)
        if name != user or given != password:
            conn.sendall(b"\r\nLogin incorrect\r\n")
            return
        conn.sendall(b"\r\n")
        relay(conn, shell)
    except OSError:
        pass
    finally:
        conn.close()


def relay(conn: socket.socket, shell: list[str]) -> None:
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["PS1"] = "# "
        os.execv(shell[0], shell)
    conn.settimeout(None)
    try:
        while True:
            ready, _, _ = select.select([conn, fd], [], [], 60)
            if not ready:
                break
            if conn in ready:
                data = conn.recv(65536)
                if not data:
                    break
                os.write(fd, strip_telnet(data))
            if fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                conn.sendall(data.replace(b"\xff", b"\xff\xff"))
    finally:
        os.close(fd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
        os.waitpid(pid, 0)


def main() -> None:
    address, port, user, password_file, *shell = sys.argv[1:]
    with open(password_file) as f:
        password = f.read().strip()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((address, int(port)))
    srv.listen(16)
    print("listening", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=session, args=(conn, user, password, shell),
                         daemon=True).start()


if __name__ == "__main__":
    main()
