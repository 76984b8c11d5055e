"""The text exposition of the agent's families, without prometheus_client.

:func:`render` writes the bytes prometheus_client's ``generate_latest`` writes for the
same families (tests compare the two), for the classic metric and label names the
agent uses (docs/metrics.md): it neither checks nor escapes names, which is most of
``generate_latest``'s cost, and it spares the board importing prometheus_client.
"""

from typing import Dict, Iterable, List, Protocol, Sequence

# The format render writes (prometheus_client 0.26 calls 1.0.0 its "latest").
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Label values longer than this (a 10 MB device-tree model, an app-chosen name) are cut,
# with a hash of the whole value so that two long values stay two series.
MAX_LABEL_VALUE = 256

# What generate_latest calls an OpenMetrics type, by Prometheus text format type.
_TYPES = {"stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}
# Samples generate_latest moves to a gauge family of their own, after the family.
_MOVED = ("_created", "_gsum", "_gcount")
_SPECIAL = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}
# Sample lines up to the value, by name and labels: a scrape's series are mostly the
# last scrape's, and writing their labels is most of the rendering.
_HEADS: Dict[object, str] = {}
MAX_HEADS = 1024


class _Sample(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def labels(self) -> Dict[str, str]: ...
    @property
    def value(self) -> float: ...
    @property
    def timestamp(self) -> object: ...


class _Family(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def documentation(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def samples(self) -> Sequence[_Sample]: ...


def float_to_go_string(d: float) -> str:
    """A sample value as Go (and prometheus_client's ``floatToGoString``) writes it."""
    d = float(d)
    s = repr(d)
    if s[-1] in "fn":  # inf, -inf, nan
        return _SPECIAL[s]
    dot = s.find(".")
    # Go switches to exponents sooner than Python (this matters for positive values).
    if d > 0 and dot > 6:
        mantissa = ("%s.%s%s" % (s[0], s[1:dot], s[dot + 1:])).rstrip("0.")
        return "%se+%02d" % (mantissa, dot - 1)
    return s


def _escape(value: str) -> str:
    if len(value) > MAX_LABEL_VALUE:
        import hashlib  # rare, and hashlib loads libcrypto (about 4 MiB)

        digest = hashlib.sha1(value.encode("utf-8", "replace")).hexdigest()[:12]
        value = "%s~%s" % (value[:MAX_LABEL_VALUE - 13], digest)
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _line(s: _Sample) -> str:
    labels = s.labels
    key = (s.name, tuple(labels.items())) if labels else s.name
    head = _HEADS.get(key)
    if head is None:
        head = _head(s.name, labels)
        # Long values (cut when written) are not kept alive by the cache.
        if all(len(v) <= MAX_LABEL_VALUE for v in labels.values()):
            if len(_HEADS) >= MAX_HEADS:
                _HEADS.clear()
            _HEADS[key] = head
    value = float_to_go_string(s.value)
    if s.timestamp is not None:
        value += " %d" % int(float(s.timestamp) * 1000)  # type: ignore[arg-type]
    return head + value + "\n"


def _head(name: str, labels: Dict[str, str]) -> str:
    """A sample line up to its value: name, labels (sorted, escaped) and a space."""
    if not labels:
        return name + " "
    return "%s{%s} " % (name, ",".join(
        '%s="%s"' % (k, _escape(v)) for k, v in sorted(labels.items())))


def render(families: Iterable[_Family]) -> bytes:
    """Families in the Prometheus text format 0.0.4, as ``generate_latest`` writes it."""
    out: List[str] = []
    for fam in families:
        name, typ = fam.name, fam.type
        if typ == "counter":
            name += "_total"
        elif typ == "info":
            name, typ = name + "_info", "gauge"
        typ = _TYPES.get(typ, typ)
        doc = fam.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append("# HELP %s %s\n# TYPE %s %s\n" % (name, doc, name, typ))
        moved: Dict[str, List[str]] = {}
        base = fam.name
        cut = len(base)
        for s in fam.samples:
            suffix = s.name[cut:]
            if suffix in _MOVED and s.name.startswith(base):
                moved.setdefault(suffix, []).append(_line(s))
            else:
                out.append(_line(s))
        for suffix, lines in sorted(moved.items()) if moved else ():
            out.append("# HELP %s%s %s\n# TYPE %s%s gauge\n" % (
                fam.name, suffix, doc, fam.name, suffix))
            out.extend(lines)
    return "".join(out).encode("utf-8")
