"""Where board text comes from: local files under a sysroot, or a batched remote read.

Collectors only talk to a :class:`Source`, so the on-board agent (``LocalSource``) and
the central agentless exporter (``SnapshotSource`` built from one SSH/telnet round trip)
share every parser and collector.
"""

import contextlib
import errno
import fnmatch
import functools
import os
import re
import select
import shlex
import signal
import stat
import threading
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from boardfleet_agent.errors import NoData, SourceError

# Files larger than this are not parsed: the read fails (the collector is served as
# failed) rather than a cut file giving a partial total as if it were good. No proc or
# sysfs file we read comes near it, and a runaway file must not eat a 64 MB board's
# memory. Vendor-tool output is capped the same way.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_TOOL_BYTES = 1024 * 1024
READ_CHUNK = 64 * 1024
# A directory below a sysroot found to be no symlink is trusted for this long, so that a
# scrape's reads lstat each directory once rather than once per file read under it.
TRUSTED_DIR_SECONDS = 1.0
MAX_TRUSTED_DIRS = 4096

# Directories searched for vendor tools (hiddrs, bspddrs, hrut_ddr, ...), under the sysroot.
TOOL_DIRS = (
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/usr/hobot/bin",
    "/komod/bin",
)

# Vendor tools share hardware counters: never run two at once in this process.
_TOOL_LOCK = threading.Lock()

# What a read of a file that went away meanwhile fails with, besides ENOENT: a
# /proc/<pid> file of a process that exited (ESRCH), a sysfs file of a removed device
# (ENODEV). A removed debugfs file gives EIO, told apart by its path being gone.
VANISHED_ERRNOS = frozenset((errno.ESRCH, errno.ENODEV))


class Source:
    """Read-only view of a board's files (paths are absolute, as on the board)."""

    name = "source"

    def read_text(self, path: str) -> str:
        """Return the file's text.

        Raises FileNotFoundError if the file is absent or vanished while it was read (an
        exited process, a removed device), else PermissionError or SourceError.
        """
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def glob(self, pattern: str) -> List[str]:
        """Sorted board paths matching a shell pattern (``*`` never crosses ``/``)."""
        raise NotImplementedError

    def readlink(self, path: str) -> str:
        raise SourceError("readlink not supported by %s" % self.name)

    def identity(self, path: str) -> Optional[Tuple[int, int, int]]:
        """What tells the file or directory at ``path`` (symlinks followed) apart from
        one made there later: device, inode and change time. Collectors cache what never
        changes in a sysfs directory (a sensor's name) under it. None: this source cannot
        tell, cache nothing. Raises OSError (FileNotFoundError if it is gone) or
        SourceError."""
        return None

    def listdir(self, path: str) -> List[str]:
        """Sorted entry names of a directory. Unlike :meth:`glob`, which sees nothing in
        a directory it may not list, raises FileNotFoundError if it is gone, else
        PermissionError or another OSError."""
        raise SourceError("listdir not supported by %s" % self.name)

    def statvfs(self, path: str) -> os.statvfs_result:
        raise NoData("filesystem statistics not available from %s" % self.name)

    def run_tool(self, tool: str, args: Sequence[str], timeout: float,
                 max_lines: Optional[int] = None) -> str:
        """Run a vendor tool and return its stdout; raise NoData if it is not installed."""
        raise NoData("vendor tools are not run through %s" % self.name)


class LocalSource(Source):
    """Files under a sysroot on this machine (``/`` on a board, a fixture tree in tests)."""

    name = "sysroot"

    def __init__(self, root: str = "/") -> None:
        self.root = os.path.realpath(root)
        self._prefix = self.root.rstrip("/") + "/"
        self._trusted: Dict[str, float] = {}  # directory -> monotonic time trusted until

    def host_path(self, path: str) -> str:
        return self._prefix + path.lstrip("/")

    def read_text(self, path: str) -> str:
        hp = self.host_path(path)
        nofollow = 0
        if self.root != "/":
            # The directories are checked; the file is opened without following a
            # symlink, which is followed only once where it leads is checked.
            head, _, name = hp.rpartition("/")
            if name not in ("", ".", "..") and self._plainly_inside(head):
                nofollow = os.O_NOFOLLOW
            else:
                self._confine(hp)
        try:
            try:
                data = _read_capped(hp, nofollow)
            except OSError as e:
                if not nofollow or e.errno != errno.ELOOP:
                    raise
                self._confine(hp)
                data = _read_capped(hp)
            return data.decode("utf-8", "replace")
        except OSError as e:
            if not isinstance(e, FileNotFoundError) and vanished(e, hp):
                raise FileNotFoundError(errno.ENOENT, "vanished while read (%s)" % e.strerror,
                                        hp) from e
            raise

    def _confine(self, hp: str) -> None:
        """SourceError if ``hp`` resolves (through symlinks) outside the sysroot.

        The sysroot is resolved already: a path below it with no symlink and no ``..``
        stays inside, found with one ``lstat`` per component below the sysroot rather
        than ``realpath``'s one per component of the whole path.
        """
        if self._plainly_inside(hp):
            return
        real = os.path.realpath(hp)
        if real != self.root and not real.startswith(self.root.rstrip("/") + "/"):
            raise SourceError("%s leads out of the sysroot %s (to %s): not read"
                              % (hp, self.root, real))

    def _plainly_inside(self, hp: str) -> bool:
        """True if every component of ``hp`` below the sysroot exists and is no symlink
        (directories checked within the last TRUSTED_DIR_SECONDS are not checked again).

        A directory is trusted until the first of its and its parents' trust ends, so
        that one look-up of a trusted directory stands for its whole path.
        """
        below = hp[len(self.root):]
        if not hp.startswith(self.root) or (below and not below.startswith("/")):
            return False
        now = time.monotonic()
        trusted = self._trusted
        until = now + TRUSTED_DIR_SECONDS
        # The deepest directory still trusted stands for the path down to it.
        cur = hp
        while len(cur) > len(self.root):
            cur_until = trusted.get(cur, 0.0)
            if cur_until > now:
                until = cur_until
                break
            cur = cur[:cur.rindex("/")]
        below = hp[len(cur):]
        for part in below.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                return False
            cur += "/" + part
            cur_until = trusted.get(cur, 0.0)
            if cur_until > now:
                until = min(until, cur_until)
                continue
            try:
                mode = os.lstat(cur).st_mode
            except OSError:
                return False
            if stat.S_ISLNK(mode):
                return False
            if stat.S_ISDIR(mode):
                if len(trusted) >= MAX_TRUSTED_DIRS:
                    trusted.clear()
                trusted[cur] = until
        return True

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.host_path(path))

    def glob(self, pattern: str) -> List[str]:
        out = []
        prefix = len(self.root.rstrip("/"))
        for hp in _glob_host(self.host_path(pattern)):
            out.append(hp[prefix:] or "/")
        return sorted(out)

    def readlink(self, path: str) -> str:
        return os.readlink(self.host_path(path))

    def identity(self, path: str) -> Optional[Tuple[int, int, int]]:
        hp = self.host_path(path)
        if self.root != "/":
            self._confine(hp)
        st = os.stat(hp)
        return st.st_dev, st.st_ino, st.st_ctime_ns

    def listdir(self, path: str) -> List[str]:
        hp = self.host_path(path)
        if self.root != "/":
            self._confine(hp)
        try:
            return sorted(os.listdir(hp))
        except OSError as e:
            if not isinstance(e, FileNotFoundError) and vanished(e, hp):
                raise FileNotFoundError(errno.ENOENT, "vanished while listed (%s)"
                                        % e.strerror, hp) from e
            raise

    def statvfs(self, path: str) -> os.statvfs_result:
        return os.statvfs(self.host_path(path))

    def find_tool(self, tool: str) -> Optional[str]:
        if "/" in tool:
            hp = self.host_path(tool)
            return hp if os.access(hp, os.X_OK) else None
        for d in TOOL_DIRS:
            hp = self.host_path(os.path.join(d, tool))
            if os.path.isfile(hp) and os.access(hp, os.X_OK):
                return hp
        return None

    def run_tool(self, tool: str, args: Sequence[str], timeout: float,
                 max_lines: Optional[int] = None) -> str:
        """Run ``tool`` with a deadline, keeping what it printed.

        Tools such as ``hiddrs`` print one line per interval forever; they are stopped
        after ``max_lines`` lines or ``timeout`` seconds, whichever comes first, and the
        output so far is returned. Runs are serialised across the whole agent.
        """
        exe = self.find_tool(tool)
        if exe is None:
            raise NoData("%s is not installed" % tool)
        with _TOOL_LOCK:
            try:
                return _run_bounded([exe, *args], timeout, max_lines)
            except SourceError:
                if self.find_tool(tool) is None:
                    raise NoData("%s was removed before it ran" % tool) from None
                raise


def vanished(error: OSError, host_path: str) -> bool:
    """Whether a failed read means the file went away (not a fault, not a missing right)."""
    if isinstance(error, FileNotFoundError) or error.errno in VANISHED_ERRNOS:
        return True
    if isinstance(error, PermissionError):
        return False
    try:
        os.lstat(host_path)
    except FileNotFoundError:
        return True
    except OSError:
        pass
    return False


def _read_capped(hp: str, flags: int = 0) -> bytes:
    """The file's bytes; SourceError if it is not a regular file or over MAX_FILE_BYTES.
    ``flags``: more for ``open`` (``O_NOFOLLOW``).

    Raw reads: ``open(...).read(MAX_FILE_BYTES)`` allocates the whole cap up front, 15
    times slower than the read itself for a small proc or sysfs file.
    """
    # O_NONBLOCK: opening a FIFO for reading would wait for a writer. Only regular files
    # are read (procfs, sysfs and debugfs files are); then reads block as usual.
    fd = os.open(hp, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | flags)
    try:
        st = os.fstat(fd)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), hp)
        if not stat.S_ISREG(mode):
            raise SourceError("%s is not a regular file" % hp)
        if st.st_size > MAX_FILE_BYTES:  # procfs says 0: then the read tells
            raise _too_large(hp)
        os.set_blocking(fd, True)
        chunks = []
        size = 0
        while True:
            chunk = os.read(fd, READ_CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise _too_large(hp)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _too_large(hp: str) -> SourceError:
    return SourceError("%s is larger than %d bytes: not parsed, so that no partial total "
                       "is served" % (hp, MAX_FILE_BYTES))


_MAGIC = re.compile(r"[*?[]")


def _glob_host(pattern: str) -> List[str]:
    """Host paths matching an absolute ``pattern``, as :func:`glob.glob` finds them.

    One listing per directory a part with a wildcard is matched in, and one ``lstat``
    per path found if the last parts have none; ``glob.glob`` also looks up every part
    without one on the way (a quarter of a scrape's globbing time).
    """
    parts = pattern.split("/")
    if parts[0] or "" in parts[1:] or "**" in pattern:
        import glob as _glob  # relative, "//" or recursive: not from the collectors

        return _glob.glob(pattern)
    paths = [""]
    look_up = False  # whether the last parts had no wildcard
    for part in parts[1:]:
        if _MAGIC.search(part) is None:
            paths = [p + "/" + part for p in paths]
            look_up = True
            continue
        match = _matcher(part)
        hidden = part.startswith(".")
        found: List[str] = []
        for d in paths:
            try:
                names = os.listdir(d or "/")
            except OSError:
                continue
            found += [d + "/" + n for n in names if (hidden or n[0] != ".") and match(n)]
        paths = found
        look_up = False
    if look_up:
        paths = [p for p in paths if os.path.lexists(p)]
    return paths


@functools.lru_cache(maxsize=64)
def _matcher(part: str) -> Callable[[str], Optional["re.Match[str]"]]:
    return re.compile(fnmatch.translate(part)).match


def _run_bounded(argv: List[str], timeout: float, max_lines: Optional[int]) -> str:
    import subprocess  # here: only boards with vendor tools run any (0.5 MiB otherwise)

    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    except OSError as e:
        raise SourceError("cannot start %s: %s" % (argv[0], e)) from e
    assert proc.stdout is not None
    chunks: List[bytes] = []
    lines = size = 0
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    poller = select.poll()  # not select(): it refuses fds above 1023
    poller.register(fd, select.POLLIN)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not poller.poll(left * 1000):
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_TOOL_BYTES:
                raise SourceError("%s printed more than %d bytes: output not parsed"
                                  % (argv[0], MAX_TOOL_BYTES))
            lines += chunk.count(b"\n")
            if max_lines is not None and lines >= max_lines:
                break
    finally:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    out = b"".join(chunks)
    if not out and proc.returncode not in (0, -signal.SIGKILL):
        raise SourceError("%s exited with status %s and no output" % (argv[0], proc.returncode))
    return out.decode("utf-8", "replace")


# --- batched remote reads -------------------------------------------------------------

ERROR_TOKEN = "@@BFERR"


def batch_script(patterns: Iterable[str], nonce: str) -> str:
    """A POSIX/busybox ``sh`` script that prints every file matching ``patterns``.

    Each file is framed as ``\\n@@BF<nonce>:<path>\\n<content>``; an unreadable file's
    content is the error token. Parse the output with :func:`parse_batch`.
    """
    words = " ".join(_quote_glob(p) for p in patterns)
    marker = "@@BF%s:" % nonce
    return (
        "for f in %s; do [ -f \"$f\" ] || continue; printf '\\n%s%%s\\n' \"$f\"; "
        "cat \"$f\" 2>/dev/null || printf '%s'; done; printf '\\n%sEND\\n'"
        % (words, marker, ERROR_TOKEN + nonce, marker)
    )


def _quote_glob(pattern: str) -> str:
    """Quote a glob for sh so that only ``*``, ``?`` and ``[...]`` stay special."""
    out = []
    for part in _split_glob(pattern):
        out.append(part if part and part[0] in "*?[" else shlex.quote(part))
    return "".join(out)


def _split_glob(pattern: str) -> List[str]:
    parts: List[str] = []
    buf = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch in "*?":
            parts += [buf, ch]
            buf = ""
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                buf += ch
            else:
                parts += [buf, pattern[i:end + 1]]
                buf = ""
                i = end
        else:
            buf += ch
        i += 1
    parts.append(buf)
    return [p for p in parts if p]


def parse_batch(output: str, nonce: str) -> Dict[str, Optional[str]]:
    """Split :func:`batch_script` output into ``{path: text}`` (``None`` = unreadable)."""
    marker = "\n@@BF%s:" % nonce
    files: Dict[str, Optional[str]] = {}
    pieces = output.split(marker)
    for piece in pieces[1:]:
        path, _, content = piece.partition("\n")
        if path == "END":
            break
        if content.endswith(ERROR_TOKEN + nonce):
            files[path] = None
        else:
            files[path] = content
    return files


class SnapshotSource(Source):
    """Files captured in one batched read of a remote board."""

    name = "snapshot"

    def __init__(self, files: Dict[str, Optional[str]]) -> None:
        self.files = files

    def read_text(self, path: str) -> str:
        if path not in self.files:
            raise FileNotFoundError(path)
        text = self.files[path]
        if text is None:
            raise PermissionError("%s could not be read on the board" % path)
        return text

    def exists(self, path: str) -> bool:
        if path in self.files:
            return True
        prefix = path.rstrip("/") + "/"
        return any(p.startswith(prefix) for p in self.files)

    def glob(self, pattern: str) -> List[str]:
        want = pattern.split("/")
        found = set()
        for path in self.files:
            have = path.split("/")
            if len(have) < len(want):
                continue
            head = have[:len(want)]
            if all(fnmatch.fnmatchcase(h, w) for h, w in zip(head, want)):
                found.add("/".join(head))
        return sorted(found)
