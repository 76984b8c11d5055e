"""The text exposition of the agent's families.

prometheus_client's ``generate_latest`` checks and escapes every metric and label name
on every sample, for UTF-8 names. The agent's gauges, counters and histograms have
classic names (docs/metrics.md), so :func:`render` writes them directly, in the same
bytes, at a third of the cost. Any other family goes through ``generate_latest``.
"""

import hashlib
from typing import Iterable, Iterator, List

from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.utils import floatToGoString


class _Families:
    """The ``collect()`` interface ``generate_latest`` asks for."""

    def __init__(self, families: List[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _plain(fam: Metric) -> bool:
    """True if the family's text is its HELP, its TYPE and one line per sample."""
    if fam.type not in ("gauge", "counter", "histogram"):
        return False
    # generate_latest moves these samples to families of their own.
    moved = (fam.name + "_created", fam.name + "_gsum", fam.name + "_gcount")
    return all(s.timestamp is None and s.name not in moved for s in fam.samples)


# Label values longer than this (a 10 MB device-tree model, an app-chosen name) are cut,
# with a hash of the whole value so that two long values stay two series.
MAX_LABEL_VALUE = 256


def _escape(value: str) -> str:
    if len(value) > MAX_LABEL_VALUE:
        digest = hashlib.sha1(value.encode("utf-8", "replace")).hexdigest()[:12]
        value = "%s~%s" % (value[:MAX_LABEL_VALUE - 13], digest)
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render(families: Iterable[Metric]) -> bytes:
    """Families in the Prometheus text format 0.0.4, as ``generate_latest`` writes it."""
    out: List[str] = []
    for fam in families:
        if not _plain(fam):
            out.append(generate_latest(_Families([fam])).decode())  # type: ignore[arg-type]
            continue
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        doc = fam.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append("# HELP %s %s\n# TYPE %s %s\n" % (name, doc, name, fam.type))
        for s in fam.samples:
            if s.labels:
                labels = ",".join('%s="%s"' % (k, _escape(v))
                                  for k, v in sorted(s.labels.items()))
                out.append("%s{%s} %s\n" % (s.name, labels, floatToGoString(s.value)))
            else:
                out.append("%s %s\n" % (s.name, floatToGoString(s.value)))
    return "".join(out).encode("utf-8")
