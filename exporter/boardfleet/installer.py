"""Install, upgrade, uninstall and query the agent on one board over SSH.

Every step compares what the board has (sha256 of each file) with what it should have
and changes only the difference, so a second install changes and restarts nothing.
Files are uploaded to a temporary name and renamed into place. A new bundle that does
not bring ``/metrics`` up is rolled back. Boards without python3 >= 3.8 are registered
for agentless collection instead. Every remote path is quoted with :func:`shlex.quote`.

Install ``prefix`` (``/`` on real boards) and the agent's ``sysroot`` are the test seam:
fake boards share one filesystem, so each gets its own prefix and sysroot.
"""

import io
import json
import posixpath
import re
import shlex
import time
import zipfile
from dataclasses import dataclass, field

from boardfleet import board_probe
from boardfleet.board_probe import Probe
from boardfleet.bundle import sha256
from boardfleet.inventory import Board
from boardfleet.ssh import Connection, Result, SSHError

SERVICE = "boardfleet-agent"
q = shlex.quote


class StepError(RuntimeError):
    """A step failed on a board; carries the step name and the remote stderr."""

    def __init__(self, step: str, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.step, self.message, self.stderr = step, message, stderr.strip()[-2000:]

    def __str__(self) -> str:
        tail = ("\n  remote stderr: " + self.stderr.replace("\n", "\n    ")) if self.stderr else ""
        return "step %s: %s%s" % (self.step, self.message, tail)


@dataclass
class Outcome:
    """What happened on one board."""

    board: str
    # installed | unchanged | upgraded | agentless | uninstalled | failed | interrupted
    action: str
    changed: list[str] = field(default_factory=list)
    detail: str = ""
    error: StepError | None = None


@dataclass
class Layout:
    """Where the agent's files go under ``prefix`` for an init system."""

    prefix: str
    init: str

    def path(self, *parts: str) -> str:
        return posixpath.join(self.prefix, *parts)

    @property
    def bundle(self) -> str:
        return self.path("opt/boardfleet/agent.pyz")

    @property
    def manifest(self) -> str:
        return self.path("opt/boardfleet/created-dirs")

    @property
    def config(self) -> str:
        return self.path("etc/boardfleet/agent.toml")

    @property
    def service(self) -> str:
        if self.init == "systemd":
            return self.path("etc/systemd/system/%s.service" % SERVICE)
        if self.init == "openrc":
            return self.path("etc/init.d/" + SERVICE)
        return self.path("etc/init.d/S99" + SERVICE)  # busybox rcS runs S??* in order

    @property
    def pidfile(self) -> str:
        return self.path("var/run/%s.pid" % SERVICE)

    @property
    def log(self) -> str:
        return self.path("var/log/%s.log" % SERVICE)

    def dirs(self) -> list[str]:
        paths = (self.bundle, self.config, self.service, self.pidfile, self.log)
        return sorted({posixpath.dirname(p) for p in paths})


# --- rendering ---------------------------------------------------------------------------

# The agent's environment on a board. glibc gives each thread that allocates its own
# malloc arena; the agent's threads are mostly idle and one arena serves them: 0.2 MiB
# (Python 3.11) to 0.45 MiB (3.8) less RSS, no CPU change beyond noise (issue 18,
# benchmarks/RESULTS.md). ``agent upgrade`` keeps the service file; ``install`` renews it.
AGENT_ENV = {"MALLOC_ARENA_MAX": "1"}


def render_config(listen: str, sysroot: str, platform: str) -> str:
    return ("# Written by boardfleet agent install; changes are overwritten.\n"
            "listen = %s\nsysroot = %s\nplatform = %s\n"
            % (json.dumps(listen), json.dumps(sysroot), json.dumps(platform)))


def render_sysv(lay: Layout, python: str) -> str:
    """Busybox/sysvinit script: a setsid'd respawn loop with a pidfile."""
    return SYSV % {"python": q(python), "bundle": q(lay.bundle), "config": q(lay.config),
                   "pidfile": q(lay.pidfile), "log": q(lay.log),
                   "env": "".join("export %s=%s\n" % (k, q(v)) for k, v in AGENT_ENV.items())}


SYSV = r"""#!/bin/sh
# boardfleet-agent: Prometheus metrics of this board (written by boardfleet agent install).
# start|stop|restart|status. The agent runs under a respawn loop that restarts it.
PYTHON=%(python)s
BUNDLE=%(bundle)s
CONFIG=%(config)s
PIDFILE=%(pidfile)s
LOG=%(log)s
%(env)s
running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

respawn() {
    echo $$ > "$PIDFILE"
    child=
    trap '[ -n "$child" ] && kill "$child" 2>/dev/null; wait; rm -f "$PIDFILE"; exit 0' TERM INT
    while :; do
        "$PYTHON" "$BUNDLE" --config "$CONFIG" </dev/null >>"$LOG" 2>&1 &
        child=$!
        wait "$child"
        echo "boardfleet-agent exited ($?); respawning in 2s" >>"$LOG"
        sleep 2
    done
}

case "$1" in
    start)
        running && exit 0
        mkdir -p "$(dirname "$PIDFILE")" "$(dirname "$LOG")"
        setsid "$0" respawn </dev/null >/dev/null 2>&1 &
        i=0
        while [ $i -lt 50 ] && ! running; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done
        running ;;
    stop)
        running || { rm -f "$PIDFILE"; exit 0; }
        pid=$(cat "$PIDFILE")
        kill "$pid"
        i=0
        while [ $i -lt 100 ] && running; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done
        if running; then
            # Still there after 10 s: kill the respawn loop's whole process group.
            kill -KILL -"$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
            rm -f "$PIDFILE"
        fi
        ! running ;;
    restart) "$0" stop && "$0" start ;;
    status) running ;;
    respawn) respawn ;;
    *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
"""


def _unit_quote(text: str) -> str:
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")


def render_systemd(lay: Layout, python: str) -> str:
    """systemd unit: always restarted, sandboxed (it only reads /proc, /sys, debugfs)."""
    return SYSTEMD % {"exec": " ".join(_unit_quote(a) for a in (
        python, lay.bundle, "--config", lay.config)), "env": "".join(
            "Environment=%s\n" % _unit_quote("%s=%s" % kv) for kv in AGENT_ENV.items())}


SYSTEMD = """\
# Written by boardfleet agent install; changes are overwritten.
[Unit]
Description=boardfleet agent (Prometheus metrics of this board)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=%(exec)s
%(env)sRestart=always
RestartSec=2
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictSUIDSGID=yes
RestrictRealtime=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes

[Install]
WantedBy=multi-user.target
"""


def render_openrc(lay: Layout, python: str) -> str:
    """OpenRC service supervised (and respawned) by supervise-daemon."""
    return OPENRC % {"python": q(python), "args": q("%s --config %s" % (q(lay.bundle),
                                                                        q(lay.config))),
                     "pidfile": q(lay.pidfile), "log": q(lay.log),
                     "args_daemon": q(" ".join("--env " + q("%s=%s" % kv)
                                               for kv in AGENT_ENV.items()))}


OPENRC = """\
#!/sbin/openrc-run
# Written by boardfleet agent install; changes are overwritten.
description="boardfleet agent (Prometheus metrics of this board)"
supervisor=supervise-daemon
respawn_delay=2
respawn_max=0
command=%(python)s
command_args=%(args)s
supervise_daemon_args=%(args_daemon)s
pidfile=%(pidfile)s
output_log=%(log)s
error_log=%(log)s

depend() {
    need net
}
"""

RENDERERS = {"systemd": render_systemd, "sysv": render_sysv, "openrc": render_openrc}


def bundle_version(data: bytes) -> str:
    """``__version__`` of the boardfleet_agent inside a bundle ("" if unreadable)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            text = zf.read("boardfleet_agent/__init__.py").decode()
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError):
        return ""
    m = re.search(r"""__version__\s*=\s*["']([^"']+)["']""", text)
    return m.group(1) if m else ""


def _version_key(version: str) -> tuple[int, ...]:
    """"1.10.2" -> (1, 10, 2): numeric parts in order, enough for agent versions."""
    return tuple(int(n) for n in re.findall(r"\d+", version))


# --- one board ---------------------------------------------------------------------------

@dataclass
class Options:
    """How to install: the bundle, and per-board settings from ``Board.install``."""

    bundle: bytes
    health_timeout: float = 20.0
    init: str = "auto"
    allow_downgrade: bool = False


class BoardInstaller:
    """The steps for one board over an open :class:`Connection`."""

    def __init__(self, conn: Connection, board: Board, opts: Options) -> None:
        self.conn, self.board, self.opts = conn, board, opts
        self.prefix = board.install.get("prefix", "/")
        self.sysroot = board.sysroot
        self.listen = board.install.get("listen", "0.0.0.0:%d" % board.agent_port)
        self.probe = Probe()
        self.lay = Layout(self.prefix, "sysv")

    def sh(self, step: str, command: str, stdin: bytes = b"", timeout: float = 60.0) -> str:
        try:
            r = self.conn.run(command, stdin=stdin, timeout=timeout)
        except SSHError as e:
            raise StepError(step, str(e)) from None
        if r.exit != 0:
            raise StepError(step, "remote command exited %d" % r.exit, r.stderr or r.stdout)
        return r.stdout

    def _run(self, step: str, command: str, timeout: float = 60.0) -> "Result":
        """``conn.run`` with a lost connection as this step's :class:`StepError`."""
        try:
            return self.conn.run(command, timeout=timeout)
        except SSHError as e:
            raise StepError(step, str(e)) from None

    def detect(self) -> Probe:
        self.probe = board_probe.parse(self.sh("probe", board_probe.command(self.sysroot)))
        init = self.opts.init if self.opts.init != "auto" else self.probe.init
        self.lay = Layout(self.prefix, init)
        return self.probe

    def wanted(self) -> dict[str, tuple[bytes, int]]:
        """Every file the install owns: path -> (content, mode)."""
        platform = self.board.platform if self.board.platform != "auto" else self.probe.platform
        service = RENDERERS[self.lay.init](self.lay, self.probe.python)
        return {
            self.lay.bundle: (self.opts.bundle, 0o755),
            self.lay.config: (render_config(self.listen, self.sysroot, platform).encode(),
                              0o644),
            self.lay.service: (service.encode(), 0o755 if self.lay.init != "systemd" else 0o644),
        }

    def remote_hashes(self, paths: list[str]) -> dict[str, str]:
        out = self.sh("compare", "sha256sum %s 2>/dev/null; true" % " ".join(map(q, paths)))
        hashes = {}
        for line in out.splitlines():
            digest, _, path = line.partition("  ")
            hashes[path] = digest
        return hashes

    def write(self, path: str, data: bytes, mode: int) -> None:
        """Upload to ``path.boardfleet-new`` and rename it into place (atomic switch)."""
        tmp = path + ".boardfleet-new"
        self.sh("upload " + posixpath.basename(path),
                "cat > %s && chmod %o %s && mv -f %s %s || { rc=$?; rm -f %s; exit $rc; }"
                % (q(tmp), mode, q(tmp), q(tmp), q(path), q(tmp)), stdin=data, timeout=300)

    def make_dirs(self) -> None:
        """Create missing directories, remembering them so uninstall removes them."""
        dirs = self.lay.dirs()
        ancestors = set()
        for d in dirs:
            while d not in ("/", ""):
                ancestors.add(d)
                d = posixpath.dirname(d)
        new = self.sh("mkdir", "for d in %s; do [ -d \"$d\" ] || echo \"$d\"; done; mkdir -p %s"
                      % (" ".join(map(q, sorted(ancestors))), " ".join(map(q, dirs))))
        new_dirs = [d for d in new.split("\n") if d]
        if new_dirs:
            self.sh("mkdir", "printf '%%s\\n' %s >> %s" % (" ".join(map(q, new_dirs)),
                                                            q(self.lay.manifest)))

    def service(self, action: str, step: str) -> str:
        """start | stop | restart | status | enable | disable the service."""
        s = self.lay.service
        if self.lay.init == "systemd":
            cmd = {"enable": "systemctl daemon-reload && systemctl enable %s" % SERVICE,
                   "disable": "systemctl disable --now %s; systemctl daemon-reload" % SERVICE,
                   "status": "systemctl is-active --quiet %s" % SERVICE,
                   }.get(action, "systemctl %s %s" % (action, SERVICE))
        elif self.lay.init == "openrc" and self.prefix == "/":
            cmd = {"enable": "rc-update add %s default" % SERVICE,
                   "disable": "rc-service %s stop; rc-update del %s default" % (SERVICE,
                                                                                 SERVICE),
                   "status": "rc-service %s status" % SERVICE,
                   }.get(action, "rc-service %s %s" % (SERVICE, action))
        else:  # busybox: rcS starts /etc/init.d/S??* at boot, nothing to enable
            if action in ("enable", "disable"):
                return ""
            cmd = "[ ! -e %s ] || %s %s" % (q(s), q(s), action) if action == "stop" else \
                "%s %s" % (q(s), action)
        return self.sh(step, cmd, timeout=60)

    def running(self) -> bool:
        try:
            self.service("status", "status")
        except StepError:
            return False
        return True

    def health(self, version: str | None, timeout: float | None = None) -> str:
        """Wait until the board's /metrics answers (with ``version``); return board_info."""
        host, _, port = self.listen.rpartition(":")
        host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)
        url = "http://%s:%s/metrics" % (host, port)
        check = ("%s -c %s %s" % (q(self.probe.python), q(
            "import sys,urllib.request\n"
            "b=urllib.request.urlopen(sys.argv[1],timeout=3).read().decode()\n"
            "print(''.join(l for l in b.splitlines() if l.startswith('board_info{')))"), q(url)))
        timeout = self.opts.health_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                r = self.conn.run(check, timeout=10)
            except SSHError as e:
                raise StepError("health", str(e)) from None
            want = 'agent_version="%s"' % version if version else "board_info{"
            if r.exit == 0 and want in r.stdout:
                return r.stdout.strip()
            last = r.stderr or r.stdout
            time.sleep(0.3)
        try:
            log = self.conn.run("tail -n 20 %s 2>/dev/null" % q(self.lay.log),
                                timeout=10).stdout
        except SSHError:
            log = ""
        raise StepError("health", "%s did not answer with agent %s within %.0fs"
                        % (url, version or "(any)", timeout), log or last)

    # --- actions ---

    def install(self, upgrade_only: bool = False) -> Outcome:
        """Bring the board to the wanted state; restart only if something changed.

        Refuses, before writing anything: a board without room for the bundle, a board
        whose python3 vanished while the agent is installed (it is never silently made
        agentless), and a downgrade without ``allow_downgrade``. A failed step removes
        what it was writing; a failed upgrade rolls back to ``.prev``, a failed first
        install removes the whole install.
        """
        name = self.board.name
        probe = self.detect()
        wanted = self.wanted() if probe.python_ok() else {}
        have = self.remote_hashes(sorted({*wanted, self.lay.bundle}))
        had_bundle = self.lay.bundle in have
        if not probe.python_ok():
            found = "%r %s" % (probe.python or "none", probe.python_version)
            if had_bundle:
                raise StepError("probe", "no python3 >= 3.8 on the board's PATH (found %s), "
                                "but the agent is installed at %s: fix python3/PATH on the "
                                "board, or 'boardfleet agent uninstall' it before it is "
                                "collected agentlessly" % (found, self.lay.bundle))
            return Outcome(name, "agentless", detail=(
                "no python3 >= 3.8 on the board (found %s); registered for agentless "
                "collection" % found))
        if upgrade_only:
            if not had_bundle:
                raise StepError("upgrade", "the agent is not installed (no %s); run "
                                "'boardfleet agent install' first" % self.lay.bundle)
            wanted = {self.lay.bundle: wanted[self.lay.bundle]}
        changed = [p for p, (data, _) in wanted.items()
                   if have.get(p) != sha256(data)]
        version = bundle_version(self.opts.bundle)
        if not changed and self.running():
            try:
                info = self.health(version, timeout=min(self.opts.health_timeout, 8.0))
            except StepError as e:
                e.message = ("the agent service is running but %s: the agent is "
                             "crash-looping (its log is below)" % e.message)
                raise
            self.sh("cleanup", "rm -f %s" % q(self.lay.bundle + ".prev"))  # stale backups
            return Outcome(name, "unchanged", detail="agent %s running: %s" % (version, info))
        if self.lay.bundle in changed and had_bundle:
            self.check_downgrade(version)
        self.check_space([wanted[p][0] for p in changed], backup=had_bundle)
        self.make_dirs()
        if self.lay.service in changed and self.lay.service in have:
            self.service("stop", "stop old service")
        if self.lay.bundle in changed and had_bundle:
            self.sh("backup", "cp -p %s %s" % (q(self.lay.bundle), q(self.lay.bundle + ".prev")))
        try:
            for path in changed:
                data, mode = wanted[path]
                self.write(path, data, mode)
            bytecode = self.prepare_bytecode()
            self.service("enable", "enable")
            self.service("restart", "restart")
            info = bytecode + self.health(version)
        except StepError as e:
            if self.lay.bundle in changed and had_bundle:
                try:
                    self.rollback()
                    e.message += "; rolled back to the previous bundle"
                except StepError as again:
                    e.message += "; rollback failed too (%s)" % again
            elif not had_bundle:
                try:
                    self.uninstall()
                    e.message += "; the failed first install was removed"
                except StepError as again:
                    e.message += "; removing the failed install failed too (%s)" % again
            raise
        self.sh("cleanup", "rm -f %s" % q(self.lay.bundle + ".prev"))
        short = [posixpath.basename(p) for p in changed]
        action = "upgraded" if upgrade_only or had_bundle else "installed"
        return Outcome(name, action, short, info)

    def check_downgrade(self, new: str) -> None:
        """Refuse to replace a newer agent unless ``allow_downgrade``."""
        old = self.status_version()
        if old and new and _version_key(old) > _version_key(new) \
                and not self.opts.allow_downgrade:
            raise StepError("version", "the board runs agent %s, newer than this bundle's %s; "
                            "pass --allow-downgrade to install the older one" % (old, new))

    def check_space(self, files: list[bytes], backup: bool) -> None:
        """Free space where the bundle goes: new files, their temp copies and a backup."""
        need = sum(len(d) for d in files) + (len(self.opts.bundle) if backup else 0)
        need = need + need // 10 + 64 * 1024
        free_kb, out = self.free_kib("space")
        if free_kb is not None and free_kb * 1024 < need:
            raise StepError("space", "only %d KiB free for %s, %d KiB needed; nothing was "
                            "changed" % (free_kb, posixpath.dirname(self.lay.bundle),
                                         (need + 1023) // 1024), out)

    def free_kib(self, step: str) -> tuple[int | None, str]:
        """KiB free where the bundle goes (None if ``df`` says nothing usable), and df's line."""
        out = self.sh(step, "d=%s; while [ ! -d \"$d\" ]; do d=$(dirname \"$d\"); done; "
                      "df -Pk \"$d\" | tail -n 1" % q(posixpath.dirname(self.lay.bundle)))
        fields = out.split()
        free_kb = next((int(f) for f in reversed(fields[:-2]) if f.isdigit()), None) \
            if len(fields) >= 4 else None
        return free_kb, out

    def prepare_bytecode(self) -> str:
        """Compile the bundle for the board's Python beside it (``agent.pyz.<cache tag>``):
        the agent then takes about 1.1 MiB less than compiling from the zip at every start.
        Not fatal: the agent runs from the zip all the same. Returns what to tell first
        in the board's result ("" when done)."""
        # Sources and bytecode take about ten times the zip: leave the board its room.
        need_kb = (12 * len(self.opts.bundle) + 1024 * 1024) // 1024
        try:
            free_kb, _ = self.free_kib("bytecode")
        except StepError:
            free_kb = None
        if free_kb is not None and free_kb < need_kb:
            why = "no room for its bytecode: %d KiB free, %d KiB needed" % (free_kb, need_kb)
        else:
            try:
                r = self._run("bytecode", "%s %s --prepare-bytecode" % (
                    q(self.probe.python), q(self.lay.bundle)), timeout=300)
            except StepError as e:  # a lost connection or a timeout: still not fatal
                why = e.message
            else:
                if r.exit == 0:
                    return ""
                why = (r.stderr.strip().splitlines() or ["exit %d" % r.exit])[-1]
        return "runs from the zip, about 1 MiB larger (%s); " % why

    def rollback(self) -> None:
        prev = q(self.lay.bundle + ".prev")
        # The bytecode prepared for the failed bundle no longer matches: the rolled-back
        # agent runs from its zip until the next install.
        self.sh("rollback", "mv -f %s %s" % (prev, q(self.lay.bundle)))
        self.service("restart", "rollback restart")
        self.health(None)

    def uninstall(self) -> Outcome:
        """Stop the service and remove every file and directory install added."""
        self.detect()
        self.service("disable", "disable")
        self.service("stop", "stop")
        lay = self.lay
        files = [lay.bundle, lay.bundle + ".prev", lay.config, lay.service, lay.pidfile,
                 lay.log]
        files += [p + ".boardfleet-new" for p in (lay.bundle, lay.config, lay.service)]
        self.sh("remove", "rm -f %s" % " ".join(map(q, files)))
        # The bytecode prepared for each Python the board had (agent.pyz.cpython-38, ...).
        self.sh("remove", "rm -rf %s*" % q(lay.bundle + ".cpython-"))
        created = self.sh("remove", "cat %s 2>/dev/null; true" % q(lay.manifest)).split("\n")
        self.sh("remove", "rm -f %s" % q(lay.manifest))
        # Deepest first; rmdir only removes directories left empty.
        dirs = sorted({d for d in created if d.startswith("/")}, key=len, reverse=True)
        if dirs:
            self.sh("remove", "for d in %s; do rmdir \"$d\" 2>/dev/null; done; true"
                    % " ".join(map(q, dirs)))
        return Outcome(self.board.name, "uninstalled")

    def status_version(self) -> str:
        """``__version__`` of the bundle installed on the board ("" if none/unreadable)."""
        if not self.probe.python_ok():
            return ""
        r = self._run("version", "%s -c %s %s" % (
            q(self.probe.python),
            q("import sys,zipfile,re;t=zipfile.ZipFile(sys.argv[1]).read("
              "'boardfleet_agent/__init__.py').decode();"
              "print(re.search(r'__version__\\s*=\\s*.([^\\x22\\x27]+)',t).group(1))"),
            q(self.lay.bundle)), timeout=20)
        return r.stdout.strip() if r.exit == 0 else ""

    def status(self) -> dict[str, str]:
        """Version on disk and whether the service runs."""
        self.detect()
        up = self.running()
        version = self.status_version()
        return {"version": version or "-", "service": "running" if up else "stopped"}


def connect(board: Board, *, known_hosts: str | None, accept_new: bool = False,
            fingerprint: str | None = None, key_filename: str | None = None,
            password: str | None = None) -> Connection:
    try:
        return Connection(board.host, board.port, board.user, known_hosts=known_hosts,
                          accept_new=accept_new, fingerprint=fingerprint,
                          key_filename=key_filename, password=password)
    except SSHError as e:
        raise StepError("connect", str(e)) from None
