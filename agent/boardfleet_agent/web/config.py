"""Securing ``/metrics``: TLS and bcrypt basic auth from a web config file.

The file is exporter-toolkit's ``--web.config.file``, in its YAML and key names, so a
lab's file for node_exporter works here too::

    tls_server_config:
      cert_file: /etc/boardfleet/agent.crt
      key_file: /etc/boardfleet/agent.key
      client_auth_type: RequireAndVerifyClientCert   # with client_ca_file
      client_ca_file: /etc/boardfleet/scrapers-ca.crt
    basic_auth_users:
      prometheus: $2b$12$...      # bcrypt hash, e.g. from `htpasswd -nbB user pass`

Hashes are checked with the ``bcrypt`` package when it is installed, otherwise with
the C library's ``crypt()`` (glibc/libxcrypt on Ubuntu 20.04 and Debian support
``$2b$``). Successful checks are cached, since bcrypt is slow by design.
"""

import threading
import time
import warnings
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from boardfleet_agent.config import ConfigError
from boardfleet_agent.log import log
from boardfleet_agent.web import yamlsubset

if TYPE_CHECKING:
    import ssl

Checker = Callable[[str, str], bool]


class WebConfig:
    """TLS context, users and extra response headers; all optional."""

    def __init__(self, ssl_context: "Optional[ssl.SSLContext]" = None,
                 users: Optional[Dict[str, str]] = None,
                 checker: Optional[Checker] = None,
                 headers: Optional[Dict[str, str]] = None) -> None:
        self.ssl_context = ssl_context
        self.users = users or {}
        self.headers = headers or {}
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
        import base64  # only with users configured (70 KiB, issue 18)

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
        import hashlib  # here: with libcrypto, 4 MiB of RSS a board without users saves

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

    import hmac

    def check_crypt(password: str, hashed: str) -> bool:
        got = crypt.crypt(password, hashed)
        return bool(got) and hmac.compare_digest(got, hashed)

    return check_crypt


# exporter-toolkit's web config keys: what the agent does with each, or why it cannot.
TLS_KEYS = ("cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
            "max_version", "prefer_server_cipher_suites")
UNSUPPORTED = {
    "tls_server_config.cert": "inline certificates are not supported; use cert_file",
    "tls_server_config.key": "inline keys are not supported; use key_file",
    "tls_server_config.client_ca": "inline CAs are not supported; use client_ca_file",
    "tls_server_config.cipher_suites": "Go cipher suite names are not supported; the "
                                       "agent uses OpenSSL's defaults",
    "tls_server_config.curve_preferences": "not supported; the agent uses OpenSSL's defaults",
    "tls_server_config.client_allowed_sans": "not supported",
    "rate_limit": "not supported; the agent refuses an address after 5 failed logins a "
                  "minute",
}
SCHEMA = {
    "tls_server_config": (*TLS_KEYS, "cert", "key", "client_ca", "cipher_suites",
                          "curve_preferences", "client_allowed_sans"),
    "http_server_config": ("http2", "headers"),
    "basic_auth_users": None,  # user name -> bcrypt hash
    "rate_limit": ("interval", "burst"),
}
CLIENT_AUTH = {  # client_auth_type -> ssl verify mode name; None: Python's ssl cannot
    "NoClientCert": "CERT_NONE", "": "CERT_NONE",
    "VerifyClientCertIfGiven": "CERT_OPTIONAL",
    "RequireAndVerifyClientCert": "CERT_REQUIRED",
    "RequestClientCert": None, "RequireAnyClientCert": None, "RequireClientCert": None,
}
TLS_VERSIONS = {"TLS10": "TLSv1", "TLS11": "TLSv1_1", "TLS12": "TLSv1_2", "TLS13": "TLSv1_3"}
# Response headers exporter-toolkit lets a web config set.
HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options",
           "X-XSS-Protection", "Strict-Transport-Security")
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
          "FALSE": False}


def load_web_config(path: str) -> WebConfig:
    """Read an exporter-toolkit web config file (YAML); ConfigError names the file and
    the key at fault. ``ssl`` is imported only when the file configures TLS."""
    where = "web config %s: " % path
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError("cannot read web config %s: %s" % (path, e.strerror)) from None
    except ValueError as e:  # UnicodeDecodeError
        raise ConfigError("%s%s" % (where, e)) from None
    try:
        data = yamlsubset.loads(text)
    except ValueError as e:
        hint = (" (web config files are exporter-toolkit's YAML now: [tls] became "
                "tls_server_config:)" if text.lstrip().startswith("[") else "")
        raise ConfigError("%s%s%s" % (where, e, hint)) from None
    data = _table(data or {}, where, "")
    for key, value in data.items():
        if key not in SCHEMA:
            raise ConfigError("%s%s: unknown setting (known: %s)"
                              % (where, key, ", ".join(SCHEMA)))
        _unsupported(where, key)
        known = SCHEMA[key]
        if known is not None:
            for sub in _table(value, where, key):
                if sub not in known:
                    raise ConfigError("%s%s.%s: unknown setting (known: %s)"
                                      % (where, key, sub, ", ".join(known)))
                _unsupported(where, key + "." + sub)
    users = _table(data.get("basic_auth_users"), where, "basic_auth_users")
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not hashed.startswith("$2"):
            raise ConfigError("%sbasic_auth_users.%s must be a bcrypt hash ($2a$/$2b$/$2y$)"
                              % (where, user))
    http = _table(data.get("http_server_config"), where, "http_server_config")
    if http.get("http2", "") != "":
        _bool(http["http2"], where + "http_server_config.http2")  # the agent serves HTTP/1.1
    headers = _table(http.get("headers"), where, "http_server_config.headers")
    for name, value in headers.items():
        if name not in HEADERS:
            raise ConfigError("%shttp_server_config.headers.%s: not a header a web config "
                              "may set (known: %s)" % (where, name, ", ".join(HEADERS)))
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            raise ConfigError("%shttp_server_config.headers.%s must be a one-line string"
                              % (where, name))
    tls = data.get("tls_server_config")
    ctx = _tls_context(_table(tls, where, "tls_server_config"), where) if tls else None
    return WebConfig(ctx, users, bcrypt_checker() if users else None, headers)


def _table(value: Any, where: str, key: str) -> Dict[str, Any]:
    if value is None or value == "":  # an empty file, or a key without a value
        return {}
    if not isinstance(value, dict):
        raise ConfigError("%s%s must be a mapping" % (where, key or "the file"))
    return value


def _unsupported(where: str, key: str) -> None:
    if key in UNSUPPORTED:
        raise ConfigError("%s%s: %s" % (where, key, UNSUPPORTED[key]))


def _bool(value: Any, where: str) -> bool:
    if value not in _BOOLS:
        raise ConfigError("%s must be true or false" % where)
    return _BOOLS[value]


def _tls_context(tls: Dict[str, Any], where: str) -> "ssl.SSLContext":
    import ssl

    for key in TLS_KEYS:
        if not isinstance(tls.get(key, ""), str):
            raise ConfigError("%stls_server_config.%s must be a string" % (where, key))
    if not tls.get("cert_file") or not tls.get("key_file"):
        raise ConfigError("%stls_server_config needs cert_file and key_file" % where)
    auth = tls.get("client_auth_type") or ""
    if auth not in CLIENT_AUTH:
        raise ConfigError("%stls_server_config.client_auth_type: %r is not one of %s"
                          % (where, auth, ", ".join(k for k in CLIENT_AUTH if k)))
    mode = CLIENT_AUTH[auth]
    if mode is None:
        raise ConfigError("%stls_server_config.client_auth_type: %s is not supported "
                          "(Python's ssl verifies every client certificate it asks for); "
                          "use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                          % (where, auth))
    ca = tls.get("client_ca_file")
    if ca and mode == "CERT_NONE":
        raise ConfigError("%stls_server_config.client_ca_file is set but client_auth_type "
                          "is NoClientCert" % where)
    if mode != "CERT_NONE" and not ca:
        raise ConfigError("%stls_server_config.client_auth_type %s needs client_ca_file"
                          % (where, auth))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for key, default, attr in (("min_version", "TLS12", "minimum_version"),
                               ("max_version", "TLS13", "maximum_version")):
        name = tls.get(key) or default
        if name not in TLS_VERSIONS:
            raise ConfigError("%stls_server_config.%s: %r is not one of %s"
                              % (where, key, name, ", ".join(TLS_VERSIONS)))
        setattr(ctx, attr, getattr(ssl.TLSVersion, TLS_VERSIONS[name]))
    prefer = tls.get("prefer_server_cipher_suites")
    if prefer and not _bool(prefer, where + "tls_server_config."
                                        "prefer_server_cipher_suites"):
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        ctx.load_cert_chain(tls["cert_file"], tls["key_file"])
        if ca:
            ctx.load_verify_locations(ca)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError("%scannot load TLS certificate, key or client CA: %s"
                          % (where, e)) from None
    ctx.verify_mode = getattr(ssl, mode)
    return ctx
