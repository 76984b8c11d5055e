"""The YAML of exporter-toolkit web config files, without a YAML library on the board.

Web config files are block mappings of mappings, lists and scalars. This reader takes
that part of YAML: ``key: value`` and nested blocks (indented by spaces), ``- item``
lists (also at the key's own indentation), ``[a, b]`` lists and ``{}``, plain,
'single-' and "double-quoted" scalars, comments and a leading ``---``. Scalars stay
strings (an empty value is ""), as PyYAML's ``BaseLoader`` reads them; the caller types
them, as Go's YAML decoder does for exporter-toolkit's struct fields. Anything else
(anchors, tags, block scalars, multi-line strings, flow mappings, duplicate keys, tabs)
raises ValueError naming the line, rather than being read differently from YAML.
"""

import re
from typing import Any, Dict, List, Optional, Tuple

_ESCAPES = {"\\": "\\", '"': '"', "/": "/", "n": "\n", "t": "\t", "r": "\r", "0": "\0",
            " ": " ", "e": "\x1b", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
# What YAML allows in a document, less tabs and line breaks other than \n (or \r\n).
_NOT_ALLOWED = re.compile("[^\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd"
                          "\U00010000-\U0010ffff]|\r(?!\n)")
# Characters a plain scalar may not start with (YAML indicators), besides "- ", "? ", ": ".
_INDICATORS = set("[]{},#&*!|>'\"%@`")


class _Line:
    def __init__(self, number: int, indent: int, text: str) -> None:
        self.number = number
        self.indent = indent
        self.text = text


def loads(text: str) -> Any:
    """The document's value: dicts, lists and strings (None for an empty document)."""
    lines, started = _lines(text)
    if not lines:
        return "" if started else None
    value, end = _block(lines, 0, lines[0].indent)
    if end < len(lines):
        raise ValueError("line %d: unexpected indentation" % lines[end].number)
    return value


def _lines(text: str) -> Tuple[List[_Line], bool]:
    """The lines with content, and whether a ``---`` started the document."""
    bad = _NOT_ALLOWED.search(text)
    if bad:
        raise ValueError("line %d: character %r not allowed"
                         % (text.count("\n", 0, bad.start()) + 1, bad.group()[0]))
    out: List[_Line] = []
    started = False
    for number, raw in enumerate(text.split("\n"), 1):
        raw = raw[:-1] if raw.endswith("\r") else raw
        stripped = raw.lstrip(" ")
        body = _strip_comment(stripped, number).rstrip(" ")
        if not body:
            continue
        if body in ("---", "...") and len(raw) == len(stripped):
            if body == "---" and not out and not started:
                started = True
                continue
            raise ValueError("line %d: one YAML document per file" % number)
        out.append(_Line(number, len(raw) - len(stripped), body))
    return out, started


def _strip_comment(text: str, number: int) -> str:
    """``text`` without its comment (a # at the start or after a space, outside quotes)."""
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if quote == '"' and ch == "\\":
                i += 1
            elif ch == quote:
                if quote == "'" and text[i + 1:i + 2] == "'":
                    i += 1
                else:
                    quote = ""
        elif ch in "'\"" and (i == 0 or text[i - 1] in " [,:-"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] == " "):
            return text[:i]
        i += 1
    if quote:
        raise ValueError("line %d: quoted string not closed on its line" % number)
    return text


def _block(lines: List[_Line], i: int, indent: int) -> Tuple[Any, int]:
    """The block starting at ``lines[i]`` (indented ``indent``): a mapping or a list."""
    if _is_item(lines[i].text):
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _is_item(text: str) -> bool:
    return text == "-" or text.startswith("- ")


def _sequence(lines: List[_Line], i: int, indent: int) -> Tuple[List[Any], int]:
    items: List[Any] = []
    while i < len(lines) and lines[i].indent == indent and _is_item(lines[i].text):
        line = lines[i]
        rest = line.text[1:].lstrip(" ")
        i += 1
        if not rest:
            if i < len(lines) and lines[i].indent > indent:
                value, i = _block(lines, i, lines[i].indent)
                items.append(value)
            else:
                items.append("")
        elif _is_item(rest) or _key_split(rest, line.number) is not None:
            raise ValueError("line %d: a list item must be a scalar or an indented block"
                             % line.number)
        else:
            items.append(_scalar(rest, line.number))
    return items, i


def _mapping(lines: List[_Line], i: int, indent: int) -> Tuple[Dict[str, Any], int]:
    out: Dict[str, Any] = {}
    while i < len(lines) and lines[i].indent == indent:
        line = lines[i]
        split = _key_split(line.text, line.number)
        if split is None:
            raise ValueError("line %d: expected 'key: value'" % line.number)
        key, rest = split
        if key in out:
            raise ValueError("line %d: key %r defined twice" % (line.number, key))
        i += 1
        if rest:
            out[key] = _scalar(rest, line.number)
        elif i < len(lines) and (lines[i].indent > indent or (
                lines[i].indent == indent and _is_item(lines[i].text))):
            out[key], i = _block(lines, i, lines[i].indent)
        else:
            out[key] = ""
    return out, i


def _key_split(text: str, number: int) -> Optional[Tuple[str, str]]:
    """(key, rest) if ``text`` is ``key: rest``, else None."""
    if text[0] in "'\"":
        key, rest = _quoted(text, number)
        rest = rest.lstrip(" ")
        if not rest.startswith(":") or rest[1:2] not in ("", " "):
            return None
        return key, rest[1:].strip(" ")
    m = re.search(r":( |$)", text)
    if m is None:
        return None
    key = text[:m.start()].rstrip(" ")
    if not key:
        raise ValueError("line %d: empty key" % number)
    return _plain(key, number), text[m.end():].strip(" ")


def _scalar(text: str, number: int) -> Any:
    if text[0] in "'\"":
        value, rest = _quoted(text, number)
        if rest.strip(" "):
            raise ValueError("line %d: text after a quoted string" % number)
        return value
    if text[0] == "[":
        return _flow_list(text, number)
    if text == "{}":
        return {}
    return _plain(text, number)


def _plain(text: str, number: int) -> str:
    if text[0] in _INDICATORS or text[:2] in ("- ", "? ", ": ") or text in ("-", "?"):
        raise ValueError("line %d: %r: YAML construct not supported in a web config"
                         % (number, text[:20]))
    if ": " in text or text.endswith(":"):
        raise ValueError("line %d: %r: a mapping cannot be a value here" % (number, text[:20]))
    return text


def _flow_list(text: str, number: int) -> List[Any]:
    if not text.endswith("]"):
        raise ValueError("line %d: a [list] must end on its line" % number)
    body = text[1:-1].strip(" ")
    items: List[Any] = []
    while body:
        if body[0] in "'\"":
            item, body = _quoted(body, number)
        else:
            end = body.find(",")
            item, body = body if end < 0 else body[:end], "" if end < 0 else body[end:]
            item = item.rstrip(" ")
            if not item or item[0] in "[]{}" or any(c in item for c in "[]{}"):
                raise ValueError("line %d: only scalars in a [list]" % number)
            item = _plain(item, number)
        items.append(item)
        body = body.lstrip(" ")
        if body.startswith(","):
            body = body[1:].lstrip(" ")
        elif body:
            raise ValueError("line %d: expected ',' in a [list]" % number)
    return items


def _quoted(text: str, number: int) -> Tuple[str, str]:
    """The quoted string at the start of ``text`` and the rest of the line."""
    quote = text[0]
    out = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            if quote == "'" and text[i + 1:i + 2] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), text[i + 1:]
        if ch == "\\" and quote == '"':
            code = text[i + 1:i + 2]
            if code in _ESCAPES:
                out.append(_ESCAPES[code])
                i += 2
                continue
            digits = _HEX_ESCAPES.get(code, 0)
            hexa = text[i + 2:i + 2 + digits]
            if not digits or len(hexa) != digits or not all(
                    c in "0123456789abcdefABCDEF" for c in hexa) or not (
                    int(hexa, 16) < 0xD800 or 0xDFFF < int(hexa, 16) <= 0x10FFFF):
                raise ValueError("line %d: bad escape in a double-quoted string" % number)
            out.append(chr(int(hexa, 16)))
            i += 2 + digits
            continue
        out.append(ch)
        i += 1
    raise ValueError("line %d: quoted string not closed on its line" % number)
