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
from typing import Annotated, Any, Dict, Iterable, List, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    field_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken
from typing_extensions import TypedDict

from boardfleet_agent.config import DEFAULT_PORT

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
SYSROOT_RE = re.compile(r"^/[A-Za-z0-9._/+-]*$")
Platform = Literal["auto", "hisi", "horizon", "snapdragon", "generic"]
# Labels the inventory sets itself; user labels may not override them.
RESERVED_LABELS = ("board", "platform", "mode", "instance", "job")
# A Prometheus label name, not one of the reserved ``__`` names.
LabelName = Annotated[str, StringConstraints(
    pattern=r"^(?:[a-zA-Z][a-zA-Z0-9_]*|_[a-zA-Z0-9][a-zA-Z0-9_]*)$")]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]


class Install(TypedDict, total=False):
    """Agent install settings of a board (a plain dict in code)."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    prefix: Annotated[str, StringConstraints(pattern=r"^/[^\n\r\x00]*$")]
    listen: Annotated[str, StringConstraints(pattern=r"^[^\n\r\x00]+$")]


class InventoryError(ValueError):
    """A bad inventory file or entry; the message names the file and the board."""


class InventoryConflict(InventoryError):
    """The board's name or agent address is already registered."""


class Board(BaseModel):
    """One board: the schema of an inventory entry, the API's body and the CLI's result.

    Declared once; the YAML loader, ``boardfleet inventory``/``agent`` and the fleet
    service's ``/boards`` all validate through it. Unknown keys are refused. Building
    a board from bad values raises :class:`InventoryError` naming the board and key.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_RE.pattern, examples=["hi3516-rack1-03"])
    host: str = Field(min_length=1, max_length=253, pattern=r"^\S+$",
                      description="address or DNS name reached over SSH/telnet",
                      examples=["10.20.0.13"])
    port: Port = Field(22, description="SSH or telnet port")
    user: str = Field("root", min_length=1, max_length=64)
    platform: Platform = "auto"
    mode: Literal["agent", "agentless"] = "agent"
    transport: Literal["ssh", "telnet"] = Field("ssh", description="agentless only")
    agent_port: Port = DEFAULT_PORT
    labels: Dict[LabelName, str] = Field(default_factory=dict)
    install: Install = Field(
        default_factory=lambda: Install(), description="agent install settings: prefix "
                                                       "(default /), listen (HOST:PORT)")
    sysroot: str = Field("/", max_length=255, pattern=SYSROOT_RE.pattern,
                         description="agentless: where the board's /proc and /sys are")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise InventoryError("board %r: %s" % (data.get("name"), describe(e))) from None

    @field_validator("labels", mode="before")
    @classmethod
    def _label_values(cls, value: Any) -> Any:
        """Numbers in YAML (``rack: 3``) are the strings they were written as."""
        if isinstance(value, dict):
            return {k: (str(v) if isinstance(v, (int, float)) and not isinstance(v, bool)
                        else v) for k, v in value.items()}
        return value

    @field_validator("labels")
    @classmethod
    def _not_reserved(cls, value: Dict[str, str]) -> Dict[str, str]:
        for key in value:
            if key in RESERVED_LABELS:
                raise ValueError("label %r is set by boardfleet itself" % key)
        return value

    @field_validator("sysroot")
    @classmethod
    def _no_dotdot(cls, value: str) -> str:
        if "/../" in value + "/":
            raise ValueError("sysroot must not contain '..'")
        return value

    def validate(self, where: str = "board") -> None:  # type: ignore[override]
        """Check values set after construction (the CLI sets attributes one by one)."""
        try:
            checked = Board.model_validate(self.model_dump())
        except ValidationError as e:
            raise InventoryError("%s %r: %s" % (where, self.name, describe(e))) from None
        self.labels = checked.labels

    def target_labels(self) -> Dict[str, str]:
        """Labels Prometheus attaches to every series of this board."""
        out = {"board": self.name, "platform": self.platform, "mode": self.mode}
        out.update(self.labels)
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "Board":
        if not isinstance(data, dict):
            raise InventoryError("%s: each board must be a mapping" % where)
        odd = [repr(k) for k in data if not isinstance(k, str)]
        if odd:
            raise InventoryError("%s %r: unknown key %s (known: %s)" % (
                where, data.get("name"), ", ".join(odd), ", ".join(Board.model_fields)))
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise InventoryError("%s %r: %s" % (where, data.get("name"), describe(e))
                                 ) from None


def describe(e: ValidationError) -> str:
    """Pydantic's errors as 'key: problem' phrases (unknown keys named as such)."""
    out = []
    for err in e.errors(include_url=False, include_input=False):
        key = ".".join(str(k) for k in err["loc"]) or "entry"
        if err["type"] == "extra_forbidden":
            out.append("unknown key %s (known: %s)" % (key, ", ".join(Board.model_fields)))
        elif err["type"] == "missing":
            out.append("%s is required" % key)
        else:
            out.append("%s: %s" % (key, err["msg"].removeprefix("Value error, ")))
    return "; ".join(out[:5])


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
        return {"boards": [_compact(b) for b in self]}

    def save(self, path: str | None = None) -> None:
        """Write atomically (temp file + rename), so readers never see half a file.

        Boards are merged into the document the file was read from: comments, key order
        and style of untouched entries and keys stay as they were.
        """
        path = path or self.path
        if not path:
            raise InventoryError("no inventory path to save to")
        doc = self.document if self.document is not None else CommentedMap()
        _merge(doc, [_compact(b) for b in self])
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


def _compact(board: Board) -> Dict[str, Any]:
    """The board's keys not at their default, so saved files stay short and readable."""
    return {k: v for k, v in board.model_dump().items()
            if k in ("name", "host") or v != Board.model_fields[k].get_default(
                call_default_factory=True)}


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
