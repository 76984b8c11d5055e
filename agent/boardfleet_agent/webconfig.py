"""Securing ``/metrics``: TLS and bcrypt basic auth from a web config file.

The file plays the role of exporter-toolkit's ``--web.config.file``, in TOML::

    [tls]
    cert_file = "/etc/boardfleet/agent.crt"
    key_file = "/etc/boardfleet/agent.key"

    [basic_auth_users]
    prometheus = "$2b$12$..."     # bcrypt hash, e.g. from `htpasswd -nbB user pass`

Hashes are checked with the ``bcrypt`` package when it is installed, otherwise with
the C library's ``crypt()`` (glibc/libxcrypt on Ubuntu 20.04 and Debian support
``$2b$``). Successful checks are cached, since bcrypt is slow by design.
"""

import base64
import hashlib
import hmac
import ssl
import threading
import warnings
from typing import Callable, Dict, Optional

from boardfleet_agent.config import ConfigError, read_toml_file

Checker = Callable[[str, str], bool]


class WebConfig:
    """TLS context and users; both optional."""

    def __init__(self, ssl_context: Optional[ssl.SSLContext] = None,
                 users: Optional[Dict[str, str]] = None,
                 checker: Optional[Checker] = None) -> None:
        self.ssl_context = ssl_context
        self.users = users or {}
        self._check = checker
        self._ok: Dict[str, bool] = {}
        self._lock = threading.Lock()

    def authorized(self, header: Optional[str]) -> bool:
        """True if no users are configured, or the Authorization header matches one."""
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode(
                "utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None or self._check is None:
            return False
        key = hashlib.sha256(("%s\0%s\0%s" % (user, password, hashed)).encode()).hexdigest()
        with self._lock:
            if key in self._ok:
                return True
        if not self._check(password, hashed):
            return False
        with self._lock:
            if len(self._ok) > 256:
                self._ok.clear()
            self._ok[key] = True
        return True


def bcrypt_checker() -> Checker:
    """A bcrypt verifier from the bcrypt package or libc crypt(); ConfigError if neither."""
    try:
        import bcrypt

        def check(password: str, hashed: str) -> bool:
            try:
                return bcrypt.checkpw(password.encode(), hashed.encode())
            except ValueError:
                return False

        return check
    except ImportError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            crypt = None  # type: ignore[assignment]
    probe = "$2b$04$abcdefghijklmnopqrstuu"
    if crypt is None or not (crypt.crypt("x", probe) or "").startswith("$2b$"):
        raise ConfigError("basic auth needs bcrypt: install the 'bcrypt' package, "
                          "or use a C library whose crypt() supports $2b$ hashes")

    def check_crypt(password: str, hashed: str) -> bool:
        got = crypt.crypt(password, hashed)
        return bool(got) and hmac.compare_digest(got, hashed)

    return check_crypt


def load_web_config(path: str) -> WebConfig:
    """Read a web config file; ConfigError names the file and the problem."""
    data = read_toml_file(path, "web config")
    unknown = sorted(set(data) - {"tls", "basic_auth_users"})
    if unknown:
        raise ConfigError("web config %s: unknown tables %s" % (path, ", ".join(unknown)))
    ctx = None
    tls = data.get("tls")
    if tls is not None:
        if not isinstance(tls, dict) or not tls.get("cert_file") or not tls.get("key_file"):
            raise ConfigError("web config %s: [tls] needs cert_file and key_file" % path)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(tls["cert_file"], tls["key_file"])
        except (OSError, ssl.SSLError) as e:
            raise ConfigError("web config %s: cannot load TLS certificate/key: %s"
                              % (path, e)) from None
    users = data.get("basic_auth_users") or {}
    if not isinstance(users, dict) or not all(
            isinstance(v, str) and v.startswith("$2") for v in users.values()):
        raise ConfigError("web config %s: [basic_auth_users] maps user names to bcrypt "
                          "hashes ($2a$/$2b$/$2y$)" % path)
    return WebConfig(ctx, users, bcrypt_checker() if users else None)
