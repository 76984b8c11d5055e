"""Board credentials from a secrets file that only its owner may read.

``secrets.yml`` (mode 0600)::

    default:                      # used for boards without their own entry
      key_file: /etc/boardfleet/id_ed25519
    boards:
      hi3516-rack1-03:
        password: "..."           # telnet login, or SSH password authentication
        user: admin               # overrides the inventory's user

Secrets never appear in logs, errors or reprs.
"""

import os
import stat
from dataclasses import dataclass, field
from typing import Any, Dict

import yaml

KEYS = ("user", "password", "key_file")


class SecretsError(ValueError):
    """The secrets file is missing, unsafe or malformed (the message holds no secret)."""


@dataclass(frozen=True)
class Credentials:
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    key_file: str | None = None

    def __repr__(self) -> str:
        return "Credentials(user=%r, password=%s, key_file=%r)" % (
            self.user, "'***'" if self.password else None, self.key_file)


class Secrets:
    """Credentials per board name, falling back to ``default``."""

    def __init__(self, default: Credentials | None = None,
                 boards: Dict[str, Credentials] | None = None) -> None:
        self.default = default or Credentials()
        self.boards = boards or {}

    def for_board(self, name: str) -> Credentials:
        return self.boards.get(name, self.default)


def check_private(path: str) -> None:
    """Refuse a file that its group or others can read or write."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise SecretsError("cannot read %s: %s" % (path, e.strerror)) from None
    if not stat.S_ISREG(st.st_mode):
        raise SecretsError("%s is not a regular file" % path)
    if st.st_mode & 0o077:
        raise SecretsError("%s is accessible by group or others (mode %03o); chmod 600 it"
                           % (path, st.st_mode & 0o777))


def read_private(path: str) -> str:
    check_private(path)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise SecretsError("cannot read %s: %s" % (path, type(e).__name__)) from None


def load_secrets(path: str) -> Secrets:
    text = read_private(path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        # The YAML error would quote the offending line, which may hold a password.
        raise SecretsError("%s is not valid YAML" % path) from None
    if not isinstance(data, dict) or set(data) - {"default", "boards"}:
        raise SecretsError("%s: expected only 'default:' and 'boards:' at top level" % path)
    boards = data.get("boards") or {}
    if not isinstance(boards, dict):
        raise SecretsError("%s: 'boards:' must map board names to credentials" % path)
    return Secrets(_creds(data.get("default") or {}, path, "default"),
                   {str(k): _creds(v, path, "board %r" % k) for k, v in boards.items()})


def _creds(data: Any, path: str, where: str) -> Credentials:
    if not isinstance(data, dict):
        raise SecretsError("%s: %s must be a mapping" % (path, where))
    unknown = sorted(str(k) for k in set(data) - set(KEYS))
    if unknown:
        raise SecretsError("%s: %s has unknown keys %s" % (path, where, ", ".join(unknown)))
    values: Dict[str, str] = {}
    for k in KEYS:
        v = data.get(k)
        if v is None:
            continue
        if not isinstance(v, (str, int)) or isinstance(v, bool):
            raise SecretsError("%s: %s: %s must be a string" % (path, where, k))
        values[k] = str(v)
    return Credentials(**values)
