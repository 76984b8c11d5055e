"""A small TOML reader for Python < 3.11, where ``tomllib`` is missing.

It reads the subset the agent's config uses: comments, ``[table]`` and ``[a.b]``
headers, bare or quoted keys, dotted keys, basic and literal strings, integers,
floats, booleans and (possibly multi-line) arrays of those. Anything else raises
``ValueError`` naming the line. On Python 3.11+ the agent uses ``tomllib`` instead.
"""

import re
from typing import Any, Dict, List, Tuple

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_NUMBER = re.compile(r"[+-]?(\d[\d_]*)(\.\d[\d_]*)?([eE][+-]?\d+)?")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "b": "\b", "f": "\f"}


def loads(text: str) -> Dict[str, Any]:
    """Parse TOML text (the subset above) into nested dicts."""
    root: Dict[str, Any] = {}
    table = root
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i]
        i += 1
        stripped = _strip_comment(line).strip()
        if not stripped:
            continue
        try:
            if stripped.startswith("["):
                if not stripped.endswith("]") or stripped.startswith("[["):
                    raise ValueError("bad table header")
                keys, rest = _parse_key(stripped[1:-1].strip())
                if rest.strip():
                    raise ValueError("bad table header")
                table = _descend(root, keys, create_last=True)
                continue
            keys, rest = _parse_key(stripped)
            rest = rest.lstrip()
            if not rest.startswith("="):
                raise ValueError("expected '=' after key")
            value_text = rest[1:].strip()
            # Multi-line arrays: keep reading until brackets balance.
            while value_text.startswith("[") and not _balanced(value_text) and i < len(lines):
                value_text += " " + _strip_comment(lines[i]).strip()
                i += 1
            value, tail = _parse_value(value_text)
            if tail.strip():
                raise ValueError("unexpected text after value: %r" % tail.strip())
            target = _descend(table, keys[:-1], create_last=False) if len(keys) > 1 else table
            if keys[-1] in target:
                raise ValueError("key %r defined twice" % keys[-1])
            target[keys[-1]] = value
        except ValueError as e:
            raise ValueError("line %d: %s" % (lineno, e)) from None
    return root


def _strip_comment(line: str) -> str:
    quote = ""
    for idx, ch in enumerate(line):
        if quote:
            if ch == quote and (quote == "'" or line[idx - 1] != "\\"):
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:idx]
    return line


def _balanced(text: str) -> bool:
    depth = 0
    quote = ""
    for idx, ch in enumerate(text):
        if quote:
            if ch == quote and (quote == "'" or text[idx - 1] != "\\"):
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
    return depth == 0


def _descend(table: Dict[str, Any], keys: List[str], create_last: bool) -> Dict[str, Any]:
    for key in keys:
        nxt = table.setdefault(key, {})
        if not isinstance(nxt, dict):
            raise ValueError("%r is not a table" % key)
        table = nxt
    return table


def _parse_key(text: str) -> Tuple[List[str], str]:
    keys = []
    while True:
        text = text.lstrip()
        if text.startswith('"') or text.startswith("'"):
            key, text = _parse_string(text)
        else:
            m = _BARE_KEY.match(text)
            if not m:
                raise ValueError("bad key")
            key, text = m.group(0), text[m.end():]
        keys.append(key)
        text = text.lstrip()
        if not text.startswith("."):
            return keys, text
        text = text[1:]


def _parse_string(text: str) -> Tuple[str, str]:
    quote = text[0]
    out: List[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return "".join(out), text[i + 1:]
        if ch == "\\" and quote == '"':
            i += 1
            if i >= len(text) or text[i] not in _ESCAPES:
                raise ValueError("bad escape in string")
            out.append(_ESCAPES[text[i]])
        else:
            out.append(ch)
        i += 1
    raise ValueError("unterminated string")


def _parse_value(text: str) -> Tuple[Any, str]:
    if not text:
        raise ValueError("missing value")
    if text[0] in "\"'":
        return _parse_string(text)
    if text.startswith("true"):
        return True, text[4:]
    if text.startswith("false"):
        return False, text[5:]
    if text[0] == "[":
        items: List[Any] = []
        rest = text[1:].lstrip()
        while not rest.startswith("]"):
            item, rest = _parse_value(rest)
            items.append(item)
            rest = rest.lstrip()
            if rest.startswith(","):
                rest = rest[1:].lstrip()
            elif not rest.startswith("]"):
                raise ValueError("expected ',' or ']' in array")
        return items, rest[1:]
    m = _NUMBER.match(text)
    if not m:
        raise ValueError("unsupported value %r" % text[:20])
    raw = m.group(0).replace("_", "")
    value: Any = float(raw) if (m.group(2) or m.group(3)) else int(raw)
    return value, text[m.end():]
