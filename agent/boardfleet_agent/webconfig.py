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
import logging
import ssl
import threading
import time
import warnings
from collections import OrderedDict
from typing import Callable, Dict, List, Optional

from boardfleet_agent.config import ConfigError, read_toml_file

Checker = Callable[[str, str], bool]

log = logging.getLogger("boardfleet.agent")


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
        # One bcrypt check at a time: wrong passwords cost at most one core.
        self._checking = threading.Lock()
        self.failures = AuthFailures()

    def authorized(self, header: Optional[str], client: str = "") -> bool:
        """True if no users are configured, or the Authorization header matches one.

        A failure is counted for ``client`` (see :class:`AuthFailures`).
        """
        if not self.users:
            return True
        if self._authorized(header):
            return True
        self.failures.failed(client)
        return False

    def _authorized(self, header: Optional[str]) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode(
                "utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if self._check is None:
            return False
        hashed = self.users.get(user)
        if hashed is None:
            # An unknown user costs one bcrypt check too: user names are not told apart
            # by the time a refusal takes.
            with self._checking:
                self._check(password, next(iter(self.users.values())))
            return False
        key = hashlib.sha256(("%s\0%s\0%s" % (user, password, hashed)).encode()).hexdigest()
        with self._lock:
            if key in self._ok:
                return True
        with self._checking:
            if not self._check(password, hashed):
                return False
        with self._lock:
            if len(self._ok) > 256:
                self._ok.clear()
            self._ok[key] = True
        return True


class AuthFailures:
    """Failed logins per client address: logged, and refused early when too many.

    After ``limit`` failures within ``window`` seconds a client is refused without a
    bcrypt check until the window has passed. At most ``max_clients`` addresses are
    tracked (the oldest are forgotten), so a flood of addresses costs bounded memory.
    """

    def __init__(self, limit: int = 5, window: float = 60.0, max_clients: int = 1024) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self.total = 0  # every failure, for the self-metric
        self._lock = threading.Lock()
        # client -> (start of its window, failures in it, failures not logged yet)
        self._clients: "OrderedDict[str, List[float]]" = OrderedDict()  # noqa: UP037 (3.8)

    def blocked(self, client: str) -> bool:
        with self._lock:
            entry = self._clients.get(client)
            if entry is None or time.monotonic() - entry[0] > self.window:
                return False
            return entry[1] >= self.limit

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.total += 1
            entry = self._clients.get(client)
            if entry is None or now - entry[0] > self.window:
                if entry is not None and entry[2]:
                    log.warning("%d more failed logins from %s", entry[2], client)
                entry = [now, 0.0, 0.0]
                self._clients[client] = entry
                self._clients.move_to_end(client)
                while len(self._clients) > self.max_clients:
                    self._clients.popitem(last=False)
                first = True
            else:
                first = False
            entry[1] += 1
            if first:
                log.warning("failed login from %s (bad user or password)", client)
            else:
                entry[2] += 1
            if entry[1] == self.limit:
                log.warning("%s: %d failed logins within %gs, refused for the rest of it",
                            client, self.limit, self.window)


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
