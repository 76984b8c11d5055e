"""The board inventory: one YAML file listing every board and its labels.

Example ``boards.yml``::

    boards:
      - name: hi3516-rack1-03
        host: 10.20.0.13          # address or DNS name reached over SSH/telnet
        user: root
        platform: hisi            # hisi | horizon | snapdragon | generic | auto
        mode: agentless           # agent (runs boardfleet-agent) | agentless (probed)
        transport: ssh            # ssh | telnet (agentless only)
        labels: {rack: r1, owner: vision, lab: sz}
        sysroot: /                # agentless: where the board's /proc and /sys are (tests)

The inventory feeds Prometheus (file SD under ``prometheus/targets/`` and the fleet
service's HTTP SD) and the installer.

The file is read and rewritten with ruamel.yaml's round-trip mode, so comments, key
order, quoting and flow-style label maps written by hand survive every CLI or API
change, and the file keeps its mode and owner. Writers (CLI and fleet service) take an
exclusive ``flock`` on ``.<name>.lock`` next to the file around load-change-save, see
:func:`editing`.
"""

import fcntl
import io
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken

from boardfleet_agent.config import DEFAULT_PORT

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
SYSROOT_RE = re.compile(r"^/[A-Za-z0-9._/+-]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
PLATFORMS = ("auto", "hisi", "horizon", "snapdragon", "generic")
MODES = ("agent", "agentless")
TRANSPORTS = ("ssh", "telnet")
INSTALL_KEYS = ("prefix", "listen")
# Labels the inventory sets itself; user labels may not override them.
RESERVED_LABELS = ("board", "platform", "mode", "instance", "job")


class InventoryError(ValueError):
    """A bad inventory file or entry; the message names the file and the board."""


class InventoryConflict(InventoryError):
    """The board's name or agent address is already registered."""


@dataclass
class Board:
    name: str
    host: str
    port: int = 22
    user: str = "root"
    platform: str = "auto"
    mode: str = "agent"
    transport: str = "ssh"
    agent_port: int = DEFAULT_PORT
    labels: Dict[str, str] = field(default_factory=dict)
    # Agent install settings: prefix (default /; a test seam like sysroot), listen.
    install: Dict[str, str] = field(default_factory=dict)
    sysroot: str = "/"

    def validate(self, where: str = "board") -> None:
        w = "%s %r" % (where, self.name)
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise InventoryError("%s: name must be 1-63 letters, digits, '.', '_' or '-'" % w)
        if not isinstance(self.host, str) or not self.host or any(c.isspace() for c in self.host):
            raise InventoryError("%s: host must be a non-empty address without spaces" % w)
        for key in ("port", "agent_port"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                raise InventoryError("%s: %s must be a TCP port (1-65535)" % (w, key))
        if not isinstance(self.user, str) or not self.user:
            raise InventoryError("%s: user must be a non-empty string" % w)
        for key, allowed in (("platform", PLATFORMS), ("mode", MODES),
                             ("transport", TRANSPORTS)):
            if getattr(self, key) not in allowed:
                raise InventoryError("%s: %s must be one of %s" % (w, key, ", ".join(allowed)))
        if (not isinstance(self.sysroot, str) or not SYSROOT_RE.match(self.sysroot)
                or "/../" in self.sysroot + "/"):
            raise InventoryError("%s: sysroot must be an absolute path of plain characters" % w)
        if not isinstance(self.labels, dict):
            raise InventoryError("%s: labels must be a mapping" % w)
        for k, v in self.labels.items():
            if not isinstance(k, str) or not LABEL_RE.match(k) or k.startswith("__"):
                raise InventoryError("%s: label name %r is not a Prometheus label name" % (w, k))
            if k in RESERVED_LABELS:
                raise InventoryError("%s: label %r is set by boardfleet itself" % (w, k))
            if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                raise InventoryError("%s: label %s must be a string" % (w, k))
        self.labels = {k: str(v) for k, v in self.labels.items()}
        if not isinstance(self.install, dict) or not set(self.install) <= set(INSTALL_KEYS):
            raise InventoryError("%s: install may only set %s" % (w, ", ".join(INSTALL_KEYS)))
        for k, v in self.install.items():
            if not isinstance(v, str) or not v or any(c in v for c in "\n\r\x00"):
                raise InventoryError("%s: install.%s must be a one-line string" % (w, k))
            if k != "listen" and not v.startswith("/"):
                raise InventoryError("%s: install.%s must be an absolute path" % (w, k))

    def target_labels(self) -> Dict[str, str]:
        """Labels Prometheus attaches to every series of this board."""
        out = {"board": self.name, "platform": self.platform, "mode": self.mode}
        out.update(self.labels)
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "Board":
        if not isinstance(data, dict):
            raise InventoryError("%s: each board must be a mapping" % where)
        known = set(cls.__dataclass_fields__)
        unknown = sorted((repr(k) if not isinstance(k, str) else k)
                         for k in data if k not in known)
        if unknown:
            raise InventoryError("%s %r: unknown keys %s (known: %s)" % (
                where, data.get("name"), ", ".join(unknown), ", ".join(sorted(known))))
        if "name" not in data or "host" not in data:
            raise InventoryError("%s: every board needs a name and a host" % where)
        board = cls(**data)
        board.validate(where)
        return board


class Inventory:
    """Boards by name, loaded from and saved to a YAML file."""

    def __init__(self, boards: Iterable[Board] = (), path: str | None = None) -> None:
        self.path = path
        self.boards: Dict[str, Board] = {}
        # The round-trip document read from ``path`` (comments, order) and its indent.
        self.document: CommentedMap | None = None
        self.indent = (2, 4, 2)
        for b in boards:
            self.add(b)

    def add(self, board: Board, replace: bool = False) -> None:
        board.validate()
        if board.name in self.boards and not replace:
            raise InventoryConflict("board %r is already in the inventory" % board.name)
        if board.mode == "agent":
            target = "%s:%d" % (board.host, board.agent_port)
            for other in self.boards.values():
                if (other.name != board.name and other.mode == "agent"
                        and "%s:%d" % (other.host, other.agent_port) == target):
                    raise InventoryConflict("board %r: its agent %s is already registered as "
                                         "board %r" % (board.name, target, other.name))
        self.boards[board.name] = board

    def remove(self, name: str) -> Board:
        try:
            return self.boards.pop(name)
        except KeyError:
            raise InventoryError("board %r is not in the inventory" % name) from None

    def get(self, name: str) -> Board:
        try:
            return self.boards[name]
        except KeyError:
            raise InventoryError("board %r is not in the inventory" % name) from None

    def __iter__(self):
        return iter(sorted(self.boards.values(), key=lambda b: b.name))

    def __len__(self) -> int:
        return len(self.boards)

    def to_dict(self) -> Dict[str, Any]:
        return {"boards": [_compact(asdict(b)) for b in self]}

    def save(self, path: str | None = None) -> None:
        """Write atomically (temp file + rename), so readers never see half a file.

        Boards are merged into the document the file was read from: comments, key order
        and style of untouched entries and keys stay as they were.
        """
        path = path or self.path
        if not path:
            raise InventoryError("no inventory path to save to")
        doc = self.document if self.document is not None else CommentedMap()
        _merge(doc, [_compact(asdict(b)) for b in self])
        yml = _yaml()
        mapping, sequence, offset = self.indent
        yml.indent(mapping=mapping, sequence=sequence, offset=offset)
        buf = io.StringIO()
        yml.dump(doc, buf)
        atomic_write(path, buf.getvalue())
        self.document = doc

    def file_sd(self, mode: str = "agent") -> List[Dict[str, Any]]:
        """Prometheus file/HTTP SD target groups for boards in ``mode``."""
        groups = []
        for b in self:
            if b.mode != mode:
                continue
            target = "%s:%d" % (b.host, b.agent_port) if mode == "agent" else b.name
            groups.append({"targets": [target], "labels": b.target_labels()})
        return groups


def _compact(d: Dict[str, Any]) -> Dict[str, Any]:
    """Drop keys still at their default, so saved files stay short and readable."""
    defaults = Board(name="", host="")
    return {k: v for k, v in d.items()
            if k in ("name", "host") or v != getattr(defaults, k)}


def _yaml() -> YAML:
    yml = YAML(typ="rt")
    yml.preserve_quotes = True
    yml.width = 4096  # never fold long label values
    return yml


def _plain(value: Any) -> Any:
    """ruamel's commented containers and scalar strings as plain Python values."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def _merge_map(target: CommentedMap, wanted: Dict[str, Any]) -> None:
    """Make ``target`` equal ``wanted`` changing only what differs (comments stay)."""
    for key in [k for k in target if k not in wanted]:
        del target[key]
    for key, value in wanted.items():
        if _plain(target.get(key)) == value:
            continue
        if isinstance(value, dict) and isinstance(target.get(key), CommentedMap):
            _merge_map(target[key], value)
        else:
            target[key] = value


def _tail_slot(entry: Any) -> list | None:
    """The comment slot after an entry's last line (ruamel keeps the comment lines that
    follow an entry there, after the last key's end-of-line comment)."""
    while isinstance(entry, CommentedMap) and len(entry):
        key = list(entry)[-1]
        value = entry[key]
        if isinstance(value, CommentedMap) and len(value) and not value.fa.flow_style():
            entry = value
            continue
        return entry.ca.items.setdefault(key, [None, None, None, None])
    return None


def _remove_entry(seq: CommentedSeq, i: int) -> None:
    """Delete board ``i`` and its own comments; keep the comment lines written after it
    (they describe the next board or the file), as the next board's leading comment."""
    slot = _tail_slot(seq[i])
    token = slot[2] if slot else None
    rest = token.value.partition("\n")[2] if token is not None else ""
    del seq[i]
    lines = [ln for ln in rest.splitlines() if ln.strip()]
    if not lines:
        return
    if i < len(seq):
        column = min(len(ln) - len(ln.lstrip()) for ln in lines)
        pre = seq.ca.items.setdefault(i, [None, None, None, None])
        pre[1] = [CommentToken(ln.strip() + "\n", CommentMark(column)) for ln in lines] + (
            pre[1] or [])
    elif i > 0 and (prev := _tail_slot(seq[i - 1])) is not None:
        text = "\n".join(lines) + "\n"
        if prev[2] is None:
            prev[2] = CommentToken("\n" + text, CommentMark(0))
        else:
            prev[2].value = prev[2].value.rstrip("\n") + "\n" + text


def _merge(doc: CommentedMap, boards: List[Dict[str, Any]]) -> None:
    seq = doc.get("boards")
    if not isinstance(seq, CommentedSeq):
        seq = doc["boards"] = CommentedSeq()
    wanted = {b["name"]: b for b in boards}
    for i in reversed(range(len(seq))):
        if not isinstance(seq[i], CommentedMap) or str(seq[i].get("name")) not in wanted:
            _remove_entry(seq, i)
    present = {str(e.get("name")): e for e in seq}
    for name, entry in wanted.items():
        if name in present:
            _merge_map(present[name], entry)
        else:
            seq.append(CommentedMap(entry))


def _indent(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indents of the file's first block sequence entry, so
    boards added later look like those written by hand."""
    m = re.search(r"^( *)-( +)[^\s#]", text, re.MULTILINE)
    if not m:
        return (2, 4, 2)
    offset, sequence = len(m.group(1)), len(m.group(1)) + len(m.group(2)) + 1
    return (max(sequence - offset, 2), sequence, offset)


def load(path: str) -> Inventory:
    """Read an inventory file; a missing file is an empty inventory."""
    if not os.path.exists(path):
        return Inventory(path=path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if "\x00" in text:
            raise InventoryError("inventory %s contains NUL bytes: not a YAML text file"
                                 % path)
        doc = _yaml().load(text)
    except OSError as e:
        raise InventoryError("cannot read inventory %s: %s" % (path, e.strerror)) from None
    except UnicodeDecodeError as e:
        raise InventoryError("inventory %s is not UTF-8 text (byte %d)" % (path, e.start)
                             ) from None
    except YAMLError as e:
        raise InventoryError("inventory %s is not valid YAML: %s" % (path, e)) from None
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap) or not isinstance(doc.get("boards") or [], list):
        raise InventoryError("inventory %s: expected a top-level 'boards:' list" % path)
    inv = Inventory(path=path)
    inv.document = doc
    inv.indent = _indent(text)
    for i, entry in enumerate(doc.get("boards") or []):
        board = Board.from_dict(_plain(entry), "inventory %s, board #%d" % (path, i + 1))
        if board.name in inv.boards:
            raise InventoryError("inventory %s: board %r is listed twice" % (path, board.name))
        inv.add(board)
    return inv


@contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold the exclusive lock that serialises every writer of the inventory ``path``."""
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd = os.open(os.path.join(directory, "." + name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def editing(path: str) -> Iterator[Inventory]:
    """Load ``path`` under the writers' lock, let the caller change it, save it.

    Nothing is saved when the block raises. Re-reading under the lock means a change
    made meanwhile by another command or the fleet service is never overwritten.
    """
    with locked(path):
        inv = load(path)
        yield inv
        inv.save()


def _make_dirs(directory: str) -> None:
    """``mkdir -p`` with 0755 directories whatever the umask (other users read below)."""
    missing = []
    while directory and not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for d in reversed(missing):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)


def atomic_write(path: str, text: str, mode: int | None = None) -> None:
    """Replace ``path`` with ``text`` atomically (temp file + rename).

    The new file gets ``mode`` if given, else the mode (and owner, when allowed) of the
    file it replaces, else 0644: files such as Prometheus' file-SD targets and
    known_hosts are read by other users (Debian runs Prometheus as ``prometheus``).
    """
    directory = os.path.dirname(os.path.abspath(path))
    _make_dirs(directory)
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if old is not None and os.geteuid() == 0:
            os.chown(tmp, old.st_uid, old.st_gid)
        os.chmod(tmp, mode if mode is not None else
                 (old.st_mode & 0o7777 if old is not None else 0o644))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
