"""The Prometheus text exposition format (0.0.4), read by the rules Prometheus uses.

For the textfile collector: the whole file is good or it is refused (ParseError naming
the line), as node_exporter's textfile collector refuses it. The rules, from the format
and from the parser node_exporter uses (``expfmt``):

- lines end with ``\\n``, the last one too; blanks and tabs may lead a line;
- ``# HELP name text`` (escapes ``\\\\`` and ``\\n``) and ``# TYPE name type``
  (counter, gauge, histogram, summary, untyped) at most once per name, TYPE before the
  name's samples; other ``#`` lines are comments;
- ``name{label="value",...} value``: names ``[a-zA-Z_:][a-zA-Z0-9_:]*``, label names
  ``[a-zA-Z_][a-zA-Z0-9_]*`` not starting with ``__``, each once; label values escape
  ``\\\\``, ``\\"`` and ``\\n``; values are Go floats (``1``, ``-2.5e3``, ``+Inf``,
  ``NaN``; hexadecimal floats are refused);
- no timestamps (node_exporter refuses client-side timestamps in text files);
- a histogram's samples are ``_bucket`` (with an ``le``), ``_sum`` and ``_count``; a
  summary's are the name (with a ``quantile``), ``_sum`` and ``_count``;
- a series (name and labels) appears once.
"""

import re
from typing import Dict, List, NamedTuple, Optional, Tuple

from boardfleet_agent.errors import ParseError

TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FLOAT = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
                    r"|(?i:inf|infinity|nan))\Z")
_BLANKS = " \t"


class Sample(NamedTuple):
    name: str
    labels: Dict[str, str]
    value: float


class Family:
    """One metric family: its name, type, help text and samples."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.type = "untyped"
        self.typed = False
        self.help: Optional[str] = None
        self.samples: List[Sample] = []


def parse(text: str) -> List[Family]:
    """The families of a text exposition, in order; ParseError names the bad line."""
    if text and not text.endswith("\n"):
        raise ParseError("the last line has no newline (was the file read while written?)")
    families: Dict[str, Family] = {}
    series = set()
    for number, line in enumerate(text.split("\n")[:-1], 1):
        try:
            line = line.lstrip(_BLANKS)
            if line.startswith("#"):
                _comment(line, families)
            elif line:
                fam, sample = _sample(line, families)
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key in series:
                    raise ParseError("series %s%s appears twice" % (
                        sample.name, _braces(sample.labels)))
                series.add(key)
                fam.samples.append(sample)
        except ParseError as e:
            raise ParseError("line %d: %s" % (number, e)) from None
    return [f for f in families.values() if f.samples]


def _braces(labels: Dict[str, str]) -> str:
    return "{%s}" % ",".join("%s=%r" % kv for kv in labels.items()) if labels else ""


def _comment(line: str, families: Dict[str, Family]) -> None:
    words = line[1:].lstrip(_BLANKS)
    keyword, _, rest = _split(words)
    if keyword not in ("HELP", "TYPE"):
        return  # a plain comment
    name, _, rest = _split(rest.lstrip(_BLANKS))
    if not _NAME.fullmatch(name):
        raise ParseError("%s: %r is not a metric name" % (keyword, name))
    fam = families.setdefault(name, Family(name))
    if keyword == "HELP":
        if fam.help is not None:
            raise ParseError("second HELP line for %s" % name)
        fam.help = _unescape(rest, {"\\": "\\", "n": "\n"})
        return
    kind = rest.strip(_BLANKS)
    if kind not in TYPES:
        raise ParseError("TYPE %s: %r is not one of %s" % (name, kind, ", ".join(TYPES)))
    if fam.typed:
        raise ParseError("second TYPE line for %s" % name)
    if fam.samples:
        raise ParseError("TYPE line for %s after its samples" % name)
    fam.type, fam.typed = kind, True


def _split(text: str) -> Tuple[str, str, str]:
    """The first word of ``text``, the blank after it, and the rest."""
    m = re.search("[ \t]", text)
    return (text, "", "") if m is None else (text[:m.start()], m.group(), text[m.end():])


def _sample(line: str, families: Dict[str, Family]) -> Tuple[Family, Sample]:
    m = _NAME.match(line)
    if m is None:
        raise ParseError("%r does not start with a metric name" % line[:40])
    name, rest = m.group(), line[m.end():]
    if rest[:1] not in ("{", " ", "\t", ""):
        raise ParseError("bad character %r after the metric name %s" % (rest[:1], name))
    rest = rest.lstrip(_BLANKS)
    labels: Dict[str, str] = {}
    if rest.startswith("{"):
        labels, rest = _labels(rest[1:])
    words = [w for w in re.split("[ \t]+", rest) if w]
    if not words:
        raise ParseError("%s has no value" % name)
    value = _float(words[0], "value of %s" % name)
    if len(words) > 1:
        raise ParseError("%s: timestamps (or trailing text) are not accepted in text files"
                         % name)
    fam = _family_of(name, labels, families)
    return fam, Sample(name, labels, value)


def _family_of(name: str, labels: Dict[str, str], families: Dict[str, Family]) -> Family:
    for suffix, kinds in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                          ("_count", ("histogram", "summary"))):
        base = families.get(name[:-len(suffix)]) if name.endswith(suffix) else None
        if base is not None and base.type in kinds:
            if suffix == "_bucket":
                _float(labels.get("le", ""), "le of %s" % name)
            return base
    fam = families.setdefault(name, Family(name))
    if fam.type == "histogram":
        raise ParseError("histogram %s: samples are %s_bucket, _sum and _count"
                         % (name, name))
    if fam.type == "summary":
        _float(labels.get("quantile", ""), "quantile of %s" % name)
    return fam


def _labels(text: str) -> Tuple[Dict[str, str], str]:
    """Labels up to the closing brace, and the text after it."""
    labels: Dict[str, str] = {}
    while True:
        text = text.lstrip(_BLANKS)
        if text.startswith("}"):
            return labels, text[1:]
        m = _LABEL.match(text)
        if m is None:
            raise ParseError("bad label name at %r" % text[:20])
        label = m.group()
        if label.startswith("__"):
            raise ParseError("label name %s is reserved" % label)
        if label in labels:
            raise ParseError("label %s given twice" % label)
        text = text[m.end():].lstrip(_BLANKS)
        if not text.startswith("="):
            raise ParseError("expected '=' after label %s" % label)
        text = text[1:].lstrip(_BLANKS)
        if not text.startswith('"'):
            raise ParseError("label %s: value must be quoted" % label)
        end = _closing_quote(text)
        labels[label] = _unescape(text[1:end], {"\\": "\\", '"': '"', "n": "\n"})
        text = text[end + 1:].lstrip(_BLANKS)
        if text.startswith(","):
            text = text[1:]
        elif not text.startswith("}"):
            raise ParseError("expected ',' or '}' after label %s" % label)


def _closing_quote(text: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    raise ParseError("label value not closed")


def _unescape(text: str, escapes: Dict[str, str]) -> str:
    if "\\" not in text:
        return text
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            code = text[i + 1:i + 2]
            if code not in escapes:
                raise ParseError("invalid escape \\%s" % code)
            out.append(escapes[code])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _float(text: str, what: str) -> float:
    if not _FLOAT.match(text):
        raise ParseError("%s: %r is not a number" % (what, text[:40]))
    return float(text)
