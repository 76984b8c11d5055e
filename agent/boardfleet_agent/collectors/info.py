"""``board_info``: platform, SoC, board model, kernel, software versions, agent version.

``os_version`` is ``/etc/os-release``'s ``PRETTY_NAME`` (Ubuntu on RDK boards, Qualcomm
Linux, Buildroot ...); ``sdk_version`` is what the vendor stack states: the HiSilicon MPP
version line of ``/proc/umap/*`` (``Hi3516EV200_MPP_V1.0.1.0 B050 Release``) or Horizon's
RDK OS version in ``/etc/version`` (``4.0.5``). Both are "" where the board states none,
and capped at 64 printable characters.

The files change with a reboot or an upgrade, not between scrapes: they are read again
once a minute, not on every scrape (about half a millisecond of CPU each time).
"""

import time
import weakref
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Tuple

from boardfleet_agent import __version__
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.hisi_umap import sdk_version
from boardfleet_agent.parsers.versions import capped, first_line, os_release
from boardfleet_agent.platform import DT_COMPATIBLE, DT_MODEL, HISI_VERSION_FILES, describe
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
RDK_VERSION = "/etc/version"
REREAD_SECONDS = 60.0


@register
class InfoCollector(Collector):
    name = "info"
    # The HiSilicon MPP version lines name the SoC of boards without a device tree.
    paths = (*DT_MODEL, *DT_COMPATIBLE, *HISI_VERSION_FILES, "/proc/sys/kernel/osrelease",
             "/proc/version", *OS_RELEASE, RDK_VERSION)

    def __init__(self, settings: Mapping[str, Any], platform: str = "generic") -> None:
        super().__init__(settings, platform)
        # (monotonic time to read again, the source read, the label values)
        self._read: Optional[Tuple[float, "weakref.ref[Source]", Tuple[str, ...]]] = None  # noqa: UP037

    def collect(self, src: Source) -> Iterator[Metric]:
        fam = GaugeMetricFamily(
            "board_info", "Board metadata; always 1.",
            labels=["platform", "soc", "model", "kernel", "os_version", "sdk_version",
                    "agent_version"])
        fam.add_metric(list(self._values(src)), 1.0)
        yield fam

    def _values(self, src: Source) -> Tuple[str, ...]:
        now = time.monotonic()
        if self._read is not None and self._read[1]() is src and now < self._read[0]:
            return self._read[2]
        d = describe(src)
        os_version = _first_stated(src, OS_RELEASE, os_release)
        sdk = _first_stated(src, HISI_VERSION_FILES, lambda t: capped(sdk_version(t) or ""))
        if not sdk and self.platform == "horizon":
            sdk = _first_stated(src, (RDK_VERSION,), first_line)
        values = (self.platform, d["soc"], d["model"], d["kernel"], os_version, sdk,
                  __version__)
        self._read = (now + REREAD_SECONDS, weakref.ref(src), values)
        return values


def _first_stated(src: Source, paths: Sequence[str], parse: Callable[[str], str]) -> str:
    """The first non-empty version the files state; "" if none is readable."""
    for path in paths:
        try:
            value = parse(src.read_text(path))
        except OSError:
            continue
        if value:
            return value
    return ""
