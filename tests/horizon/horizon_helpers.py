"""Shared helpers for the Horizon/ION tests: samples, fixture copies, collector runs."""

import re
import shutil
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from support.paths import FIXTURES, SAMPLES

from boardfleet_agent.registry import Collector
from boardfleet_agent.runner import Outcome, run_collector
from boardfleet_agent.source import LocalSource, Source


def sample(vendor: str, name: str) -> str:
    return (SAMPLES / vendor / name).read_text()


def without_prompt(text: str) -> str:
    """Drop a leading shell-prompt line (``... # cat heap``): it is not file content."""
    first, _, rest = text.partition("\n")
    return rest if "# cat " in first else text


def gecko_msm_heap() -> str:
    """The msm heap from the gecko comment, ``//`` markers removed.

    The comment elides the totals as ``<other stuff>``; they are replaced by totals
    consistent with its rows (orphans 294912+1658880+1658880+4096+61440 = 3678208,
    plus the clients' 4096+1658880).
    """
    comment = sample("qualcomm", "ion_heap_system_msm_gecko_comment.txt")
    text = re.sub(r"(?m)^ *// {0,5}", "", comment)
    totals = "  total orphaned          3678208\n          total          5341184\n"
    return text.replace("<other stuff>\n", "-" * 52 + "\n" + totals)


def fixture_copy(board: str, tmp: Path) -> Path:
    dst = tmp / board
    shutil.copytree(FIXTURES / board, dst, symlinks=True)
    return dst


def run(cls: type, src: Source, **settings: object) -> Outcome:
    collector: Collector = cls(settings, platform="horizon")
    return run_collector(collector, src)


def samples_of(outcome: Outcome) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    """{(metric name, sorted labels): value} of everything the outcome produced."""
    out = {}
    for fam in outcome.families:
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(outcome: Outcome, name: str, **labels: str) -> float:
    return samples_of(outcome)[(name, tuple(sorted(labels.items())))]


def snapshot_of(local: LocalSource, patterns: Iterable[str]) -> Dict[str, str]:
    """What an agentless probe would fetch for ``patterns``: every matching file's text."""
    files: Dict[str, str] = {}
    for pattern in patterns:
        for path in local.glob(pattern):
            files[path] = local.read_text(path)
    return files


def metric_lines(exposition: str, prefix: str) -> List[str]:
    return [line for line in exposition.splitlines() if line.startswith(prefix)]
