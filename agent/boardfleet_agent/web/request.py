"""HTTP/1.1 request heads, parsed without ``http.server`` and ``email`` (issue 18).

Only what the agent serves is understood: a request line and header fields (RFC 9112).
Anything else malformed is a :class:`BadRequest` carrying the status to answer.
"""

import re
from typing import Dict, NamedTuple, Tuple

# method SP request-target SP HTTP-version; methods are tokens, targets visible bytes.
_REQUEST_LINE = re.compile(
    r"([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^\x00-\x20\x7f]+) HTTP/([0-9])\.([0-9])\Z")
# field-name ":" OWS field-value OWS; no whitespace before the colon, no obs-fold.
_FIELD = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+):([^\x00-\x08\x0a-\x1f\x7f]*)\Z")
_ABSOLUTE = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://[^/?#]*")
# Where a head ends: its first empty line (a bare LF ends a line too, as in http.server).
HEAD_END = re.compile(rb"\n\r?\n")


class BadRequest(ValueError):
    """A request the server answers with ``status`` and closes the connection after."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


class Request(NamedTuple):
    method: str
    target: str  # as sent
    path: str  # the target's path: no scheme and host, no query
    version: Tuple[int, int]
    headers: Dict[str, str]  # lower-case names; repeated fields joined with ", "
    keep_alive: bool  # whether the connection may serve another request after this one


def parse_head(head: bytes) -> Request:
    """A request from its head (request line and fields, without the empty line)."""
    text = head.decode("latin-1")
    lines = text.split("\n")
    m = _REQUEST_LINE.match(_chomp(lines[0]))
    if m is None:
        raise BadRequest(400, "malformed request line")
    method, target = m.group(1), m.group(2)
    version = (int(m.group(3)), int(m.group(4)))
    if version[0] != 1:
        raise BadRequest(505, "HTTP version not supported")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        f = _FIELD.match(_chomp(line))
        if f is None:
            raise BadRequest(400, "malformed header field")
        name, value = f.group(1).lower(), f.group(2).strip(" \t")
        headers[name] = headers[name] + ", " + value if name in headers else value
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    # A body the agent never reads would be taken for the next request: close after it.
    body = "transfer-encoding" in headers or headers.get("content-length", "0") != "0"
    keep = ("close" not in tokens and not body
            and (version >= (1, 1) or "keep-alive" in tokens))
    absolute = _ABSOLUTE.match(target)
    path = target
    if absolute is not None:  # absolute-form, as sent to proxies
        path = target[absolute.end():]
        path = path if path.startswith("/") else "/" + path
    return Request(method, target, path.split("?", 1)[0], version, headers, keep)


def _chomp(line: str) -> str:
    return line[:-1] if line.endswith("\r") else line
