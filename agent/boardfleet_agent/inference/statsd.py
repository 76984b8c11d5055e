"""StatsD / DogStatsD datagram parsing (pure: no sockets, no state).

A datagram holds lines ``<name>:<value>|<type>[|@<rate>][|#<tag>:<value>,...]``
separated by newlines. Only the types the inference intake uses are accepted: ``ms``
(timings) and ``c`` (counters, for model-load events). Every rejected line or packet
is reported by a reason from :data:`REASONS`; nothing here raises on bad input.
"""

import math
import re
from typing import Dict, List, NamedTuple, Tuple, Union

MAX_PACKET_BYTES = 8192
# A timing above one hour is a unit or clock bug, not an inference.
MAX_TIMING_MS = 3600.0 * 1000.0
# The smallest sample rate: one line then stands for 1000 timings. A tinier ``@rate``
# would make a model's count and sum infinite (or 1e300) until the agent restarts.
MIN_RATE = 0.001
TYPES = ("ms", "c")

REASONS = (
    "malformed", "unknown_type", "not_finite", "negative", "too_large",
    "oversized_packet", "bad_encoding", "bad_label", "too_many_models", "too_many_series",
)

_NAME = re.compile(r"[A-Za-z0-9_.\-/]{1,128}\Z")
_TAG_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_NUMBER = re.compile(
    r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\Z|[-+]?(?:nan|inf|infinity)\Z",
    re.ASCII | re.IGNORECASE)
# Label values taken from names and tags: short, printable ASCII, no separators.
LABEL_VALUE = re.compile(r"[A-Za-z0-9_.\-/]{1,64}\Z")


class Sample(NamedTuple):
    """One accepted line. ``value`` is in the line's unit (milliseconds for ``ms``)."""

    name: str
    type: str
    value: float
    rate: float
    tags: Dict[str, str]


def parse_line(line: str) -> Union[Sample, str]:
    """Parse one line into a :class:`Sample`, or return the reason it is rejected.

    The result depends only on the value field (up to the first ``|``) and on
    :func:`line_shape`, the rest of the line: callers may cache by shape.
    """
    name, sep, rest = line.partition(":")
    if not sep or not _NAME.match(name):
        return "malformed"
    parts = rest.split("|")
    if len(parts) < 2:
        return "malformed"
    mtype = parts[1]
    if mtype not in TYPES:
        return "unknown_type"
    value = parse_value(parts[0], mtype)
    if isinstance(value, str):
        return value
    rate = 1.0
    tags: Dict[str, str] = {}
    seen = set()
    for part in parts[2:]:
        kind = part[:1]
        if kind in seen or kind not in ("@", "#"):
            return "malformed"
        seen.add(kind)
        if kind == "@":
            if not _NUMBER.match(part[1:]):
                return "malformed"
            rate = float(part[1:])
            if not MIN_RATE <= rate <= 1.0:
                return "malformed"
        else:
            for tag in part[1:].split(","):
                key, _, val = tag.partition(":")
                if not _TAG_KEY.match(key):
                    return "malformed"
                tags[key] = val
    return Sample(name, mtype, value, rate, tags)


def line_shape(line: str) -> Tuple[str, str]:
    """``(shape, value field)``: the line without its value, and the value."""
    colon = line.find(":")
    bar = line.find("|", colon + 1)
    if colon < 0 or bar < 0:
        return line, ""
    return line[:colon + 1] + line[bar:], line[colon + 1:bar]


def parse_value(text: str, mtype: str) -> Union[float, str]:
    """The value field of a line of type ``mtype``, or the reason it is rejected."""
    if not _NUMBER.match(text):
        return "malformed"
    value = float(text)
    if not math.isfinite(value):
        return "not_finite"
    if value < 0:
        return "negative"
    if mtype == "ms" and value > MAX_TIMING_MS:
        return "too_large"
    return value


def split_datagram(data: bytes, max_bytes: int = MAX_PACKET_BYTES) -> Union[List[str], str]:
    """The datagram's non-empty lines, or the reason the whole packet is rejected."""
    if len(data) > max_bytes:
        return "oversized_packet"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "bad_encoding"
    return [line.rstrip("\r") for line in text.split("\n") if line.rstrip("\r")]

