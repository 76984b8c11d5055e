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
"""

import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List

import yaml

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
        unknown = sorted(set(data) - known)
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
        for b in boards:
            self.add(b)

    def add(self, board: Board, replace: bool = False) -> None:
        board.validate()
        if board.name in self.boards and not replace:
            raise InventoryError("board %r is already in the inventory" % board.name)
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
        """Write atomically (temp file + rename), so readers never see half a file."""
        path = path or self.path
        if not path:
            raise InventoryError("no inventory path to save to")
        atomic_write(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

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


def load(path: str) -> Inventory:
    """Read an inventory file; a missing file is an empty inventory."""
    if not os.path.exists(path):
        return Inventory(path=path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise InventoryError("cannot read inventory %s: %s" % (path, e.strerror)) from None
    except yaml.YAMLError as e:
        raise InventoryError("inventory %s is not valid YAML: %s" % (path, e)) from None
    if not isinstance(data, dict) or not isinstance(data.get("boards", []), list):
        raise InventoryError("inventory %s: expected a top-level 'boards:' list" % path)
    inv = Inventory(path=path)
    for i, entry in enumerate(data.get("boards") or []):
        board = Board.from_dict(entry, "inventory %s, board #%d" % (path, i + 1))
        if board.name in inv.boards:
            raise InventoryError("inventory %s: board %r is listed twice" % (path, board.name))
        inv.boards[board.name] = board
    return inv


def atomic_write(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
