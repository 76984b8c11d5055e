"""Samples, the qcs6490 fixture, and sources built from them for the Snapdragon tests."""

import fnmatch
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

from prometheus_client.core import Metric
from support.paths import FIXTURES, SAMPLES

from boardfleet_agent.errors import ParseError
from boardfleet_agent.registry import Collector
from boardfleet_agent.source import SnapshotSource, Source

QCOM = SAMPLES / "qualcomm"
QCS6490 = FIXTURES / "qcs6490"


def sample(name: str) -> str:
    return (QCOM / name).read_text()


def section(name: str, command: str) -> str:
    """The output that follows the shell line ending in ``command`` in a sample."""
    lines = sample(name).splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith(command)) + 1
    out = []
    for line in lines[start:]:
        if line.startswith(("$ ", "[root@")):
            break
        out.append(line)
    return "\n".join(out).strip("\n") + "\n"


def asahi_bufinfo() -> str:
    return section("dmabuf_bufinfo_upstream_format_NON_QCOM_asahi.txt",
                   "cat /sys/kernel/debug/dma_buf/bufinfo")


def amdgpu_bufinfo() -> str:
    return section("dmabuf_fdinfo_and_bufinfo_NON_QCOM_amdgpu.txt",
                   "cat /sys/kernel/debug/dma_buf/bufinfo")


def amdgpu_fdinfo() -> str:
    return section("dmabuf_fdinfo_and_bufinfo_NON_QCOM_amdgpu.txt",
                   "cat /proc/1627/fdinfo/6")


def snapshot_of(root: Path, patterns: Iterable[str]) -> SnapshotSource:
    """What an agentless batch read of ``patterns`` would fetch from a fixture tree.

    Like ``batch_script``: only regular files (not symlinks) whose board path matches
    a pattern segment by segment.
    """
    wanted = [p.split("/") for p in patterns]
    files: Dict[str, Optional[str]] = {}  # noqa: UP045 (SnapshotSource's type)
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            host = os.path.join(dirpath, n)
            if os.path.islink(host):
                continue
            board = "/" + os.path.relpath(host, root)
            parts = board.split("/")
            if any(len(w) == len(parts) and all(fnmatch.fnmatchcase(h, s)
                                                 for h, s in zip(parts, w, strict=True))
                   for w in wanted):
                with open(host, encoding="utf-8", errors="replace") as f:
                    files[board] = f.read()
    return SnapshotSource(files)


def samples_of(families: List[Metric]) -> Dict[str, Dict[tuple, float]]:
    """{family name: {sorted label items: value}}."""
    out: Dict[str, Dict[tuple, float]] = {}
    for fam in families:
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def collect(collector: Collector, src: Source) -> Dict[str, Dict[tuple, float]]:
    return samples_of(list(collector.collect(src)))


def parsed_or_rejected(parse: Callable[[str], Any], text: str) -> Any:
    """The parser's result, or None if it raised ParseError (any other error propagates)."""
    try:
        return parse(text)
    except ParseError:
        return None
