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
from typing import Any, Dict

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator


class SecretsError(ValueError):
    """The secrets file is missing, unsafe or malformed (the message holds no secret)."""


class Credentials(BaseModel):
    """How to log in to a board; the password is a ``SecretStr`` (never printed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str | None = None
    password: SecretStr | None = None
    key_file: str | None = None

    @field_validator("user", "password", "key_file", mode="before")
    @classmethod
    def _plain_scalar(cls, value: Any) -> Any:
        """YAML turns ``password: 1234`` into an int: take it as the string it was."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    def secret(self) -> str | None:
        """The password itself, for the transport that sends it."""
        return self.password.get_secret_value() if self.password is not None else None


class SecretsFile(BaseModel):
    """The schema of ``secrets.yml``."""

    model_config = ConfigDict(extra="forbid")

    default: Credentials = Field(default_factory=Credentials)
    boards: Dict[str, Credentials] = Field(default_factory=dict)


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
    if isinstance(data, dict):
        data = {k: (v if v is not None else {}) for k, v in data.items()}
        if isinstance(data.get("boards"), dict):
            data["boards"] = {str(k): (v if v is not None else {})
                              for k, v in data["boards"].items()}
    try:
        parsed = SecretsFile.model_validate(data)
    except ValidationError as e:
        raise SecretsError("%s: %s" % (path, _describe(e))) from None
    return Secrets(parsed.default, parsed.boards)


def _describe(e: ValidationError) -> str:
    """Where and what, never the offending value (it may be a password)."""
    out = []
    for err in e.errors(include_input=False, include_url=False):
        loc = err["loc"]
        where = "board %r" % loc[1] if loc[:1] == ("boards",) and len(loc) > 1 else (
            str(loc[0]) if loc else "top level")
        key = next((str(k) for k in reversed(loc) if isinstance(k, str)), "")
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        out.append("%s: %s: %s" % (where, key, msg) if key and key != where.split()[0]
                   else "%s: %s" % (where, msg))
    return "; ".join(out[:5])
