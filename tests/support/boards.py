"""Fake boards for end-to-end tests: network namespaces, each with its own sshd.

:func:`boards` creates N "boards". Each one is a network namespace with

* its own address on a veth pair (``198.18.X.4i+2/30``; the host side is ``.4i+1``),
  from the benchmarking range 198.18.0.0/15, used only inside these test namespaces;
* its own ``sshd`` (Debian openssh-server) listening on ``<address>:22`` with its own
  ed25519 host key, accepting a per-run client key for ``root``;
* a busybox userland: every SSH command runs under ``/bin/sh`` with ``PATH`` set to
  the board's own ``bin/`` (busybox applets, plus ``python3`` unless ``python=False``),
  so a board "without Python" really has no ``python3`` on its PATH;
* its own copy of a fixture sysroot (``tests/fixtures/<fixture>``) and an empty
  install ``prefix`` directory. Network namespaces do not isolate files, so code that
  installs onto a board takes a prefix (real boards: ``/``) and the agent a
  ``--sysroot``; both are the same test seam as the agent's ``--sysroot``.

Everything is named ``bftest-<pid>-...``; :func:`cleanup_stale` removes what a killed
run left behind (namespaces whose creating pid is gone). Usage::

    with boards([BoardSpec("b0"), BoardSpec("b1", python=False)]) as (b0, b1):
        b0.ssh("uname -m")          # run a command on the board with the ssh client
        b0.address, b0.ssh_port, b0.host_key_fingerprint, b0.client_key
"""

import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Sequence

from support.paths import FIXTURES

PREFIX = "bftest-"
SSHD = "/usr/sbin/sshd"
# Applets a busybox board needs for the installer and agentless probes.
BUSYBOX = "/usr/bin/busybox"
REAL_PYTHON = "/usr/bin/python3"


@dataclass
class BoardSpec:
    """What kind of board to create."""

    name: str
    fixture: str = "generic"
    python: bool = True
    # Extra sshd_config lines (for example to change the host key algorithm).
    sshd_options: List[str] = field(default_factory=list)


@dataclass
class FakeBoard:
    """A running fake board. ``root`` holds its sysroot, prefix, keys and logs."""

    name: str
    netns: str
    address: str
    host_address: str
    ssh_port: int
    root: Path
    sysroot: Path
    prefix: Path
    bin_dir: Path
    host_key: Path
    host_key_fingerprint: str  # "SHA256:..." as printed by ssh-keygen -l
    client_key: Path
    known_hosts_line: str
    python: bool
    sshd: subprocess.Popen | None = None

    def netns_exec(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run ``argv`` locally inside the board's network namespace."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv],
                              capture_output=True, text=True, timeout=timeout)

    def ssh(self, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run ``command`` on the board with OpenSSH's client (independent of paramiko)."""
        kh = self.root / "client_known_hosts"
        kh.write_text(self.known_hosts_line + "\n")
        return subprocess.run(
            ["ssh", "-i", str(self.client_key), "-p", str(self.ssh_port),
             "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=%s" % kh,
             "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5",
             "root@%s" % self.address, command],
            capture_output=True, text=True, timeout=timeout)


def _run(*argv: str) -> str:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(argv), r.stderr.strip()))
    return r.stdout


def cleanup_stale() -> None:
    """Delete ``bftest-<pid>-*`` namespaces and temp dirs whose pid no longer runs."""
    for line in _run("ip", "netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if name.startswith(PREFIX) and len(parts) >= 2 and parts[1].isdigit() \
                and not _alive(int(parts[1])):
            _delete_netns(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_subnet() -> int:
    """A third octet X so that 198.18.X.0/24 is not routed on this host yet."""
    routes = _run("ip", "-4", "route", "show", "table", "all")
    for _ in range(50):
        x = random.randrange(1, 255)
        if "198.18.%d." % x not in routes:
            return x
    raise RuntimeError("no free 198.18.X.0/24 subnet for test boards")


def _fingerprint(pubkey: Path) -> str:
    return _run("ssh-keygen", "-l", "-E", "sha256", "-f", str(pubkey)).split()[1]


def _make_bin(bin_dir: Path, python: bool) -> None:
    bin_dir.mkdir()
    for applet in _run(BUSYBOX, "--list").split():
        if applet != "busybox":
            (bin_dir / applet).symlink_to(BUSYBOX)
    if python:
        (bin_dir / "python3").symlink_to(REAL_PYTHON)


def _start_board(stack: ExitStack, base: Path, spec: BoardSpec, index: int, subnet: int,
                 token: str, client_key: Path) -> FakeBoard:
    netns = "%s%s-%d" % (PREFIX, token, index)
    short = "bf%s%03d" % (token[-4:], os.getpid() % 1000)  # interface names: <= 15 chars
    host_if, board_if = "%sh%d" % (short, index), "%sb%d" % (short, index)
    host_addr = "198.18.%d.%d" % (subnet, 4 * index + 1)
    address = "198.18.%d.%d" % (subnet, 4 * index + 2)
    root = base / spec.name
    root.mkdir()
    _run("ip", "netns", "add", netns)
    stack.callback(_delete_netns, netns)
    _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", board_if)
    stack.callback(subprocess.run, ["ip", "link", "delete", host_if],
                   capture_output=True, timeout=30)
    _run("ip", "link", "set", board_if, "netns", netns)
    _run("ip", "addr", "add", host_addr + "/30", "dev", host_if)
    _run("ip", "link", "set", host_if, "up")
    for argv in (("ip", "addr", "add", address + "/30", "dev", board_if),
                 ("ip", "link", "set", board_if, "up"), ("ip", "link", "set", "lo", "up")):
        _run("ip", "netns", "exec", netns, *argv)

    sysroot, prefix, bin_dir = root / "sysroot", root / "prefix", root / "bin"
    shutil.copytree(FIXTURES / spec.fixture, sysroot, symlinks=True)
    prefix.mkdir()
    _make_bin(bin_dir, spec.python)
    host_key = root / "ssh_host_ed25519_key"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", spec.name, "-f", str(host_key))
    pub = host_key.with_suffix(".pub").read_text().split()
    shell = root / "board-shell"
    shell.write_text(
        "#!/bin/sh\n# The board's login shell: busybox userland, PATH without the host's.\n"
        "PATH=%s\nexport PATH\ncd /\n"
        '[ -n "$SSH_ORIGINAL_COMMAND" ] || exec %s/sh -l\n'
        'exec %s/sh -c "$SSH_ORIGINAL_COMMAND"\n' % (bin_dir, bin_dir, bin_dir))
    shell.chmod(0o755)
    config = root / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress %s:22" % address, "HostKey %s" % host_key,
        "PidFile %s" % (root / "sshd.pid"), "AuthorizedKeysFile %s" % (root / "authorized_keys"),
        "PermitRootLogin prohibit-password", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        "ForceCommand %s" % shell, "PrintMotd no", "LogLevel VERBOSE",
        "MaxSessions 50", "MaxStartups 50",
        *spec.sshd_options, ""]))
    (root / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    log = open(root / "sshd.log", "wb")  # noqa: SIM115 (closed by the exit stack)
    stack.callback(log.close)
    proc = subprocess.Popen(["ip", "netns", "exec", netns, SSHD, "-D", "-e", "-f", str(config)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stack.callback(_stop, proc)
    board = FakeBoard(
        name=spec.name, netns=netns, address=address, host_address=host_addr, ssh_port=22,
        root=root, sysroot=sysroot, prefix=prefix, bin_dir=bin_dir, host_key=host_key,
        host_key_fingerprint=_fingerprint(host_key.with_suffix(".pub")),
        client_key=client_key, known_hosts_line="%s %s %s" % (address, pub[0], pub[1]),
        python=spec.python, sshd=proc)
    _wait_ssh(board)
    return board


def _wait_ssh(board: FakeBoard, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if board.sshd is not None and board.sshd.poll() is not None:
            raise RuntimeError("sshd of %s exited: %s" % (
                board.name, (board.root / "sshd.log").read_text()))
        if board.ssh("true", timeout=10).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("sshd of %s did not accept the client key within %.0fs" % (
        board.name, timeout))


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process group we started (sshd and its session children)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _delete_netns(netns: str) -> None:
    """SIGKILL whatever still runs in ``netns`` (agents a test left behind), delete it."""
    r = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True,
                       timeout=30)
    for pid in r.stdout.split():
        with suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "delete", netns], capture_output=True, timeout=30)


@contextmanager
def boards(specs: Sequence[BoardSpec]) -> Iterator[List[FakeBoard]]:
    """Create one fake board per spec; on exit stop every process and delete everything.

    Needs root, ``ip`` (iproute2), ``sshd`` (openssh-server), ``ssh``/``ssh-keygen``
    (openssh-client) and ``busybox``.
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("board names must be unique: %s" % names)
    cleanup_stale()
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    token = "%d-%04x" % (os.getpid(), random.randrange(0x10000))
    with ExitStack() as stack:
        base = Path(tempfile.mkdtemp(prefix="%s%s-" % (PREFIX, token)))
        stack.callback(shutil.rmtree, base, ignore_errors=True)
        client_key = base / "client_ed25519"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bftest", "-f",
             str(client_key))
        subnet = _free_subnet()
        yield [_start_board(stack, base, spec, i, subnet, token, client_key)
               for i, spec in enumerate(specs)]
