"""``board_info`` is read once a minute, not on every scrape, and at once for a new source."""

import shutil
from pathlib import Path
from typing import List

from support.paths import FIXTURES

import boardfleet_agent.collectors.info as info_mod
from boardfleet_agent.collectors.info import REREAD_SECONDS, InfoCollector
from boardfleet_agent.source import LocalSource


class CountingSource(LocalSource):
    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.reads: List[str] = []

    def read_text(self, path: str) -> str:
        self.reads.append(path)
        return super().read_text(path)


def _labels(collector: InfoCollector, src: LocalSource) -> dict:
    [fam] = list(collector.collect(src))
    [sample] = fam.samples
    return sample.labels


def test_board_info_is_read_again_after_a_minute_only(tmp_path: Path, monkeypatch) -> None:
    board = tmp_path / "board"
    shutil.copytree(FIXTURES / "generic", board, symlinks=True)
    clock = [1000.0]
    monkeypatch.setattr(info_mod.time, "monotonic", lambda: clock[0])
    src = CountingSource(str(board))
    collector = InfoCollector({}, platform="generic")
    first = _labels(collector, src)
    reads = len(src.reads)
    assert reads > 0 and first["kernel"]

    (board / "proc" / "sys" / "kernel" / "osrelease").write_text("9.9.9-upgraded\n")
    clock[0] += REREAD_SECONDS - 1
    assert _labels(collector, src) == first  # served from the last read
    assert len(src.reads) == reads

    clock[0] += 2
    assert _labels(collector, src)["kernel"] == "9.9.9-upgraded"
    assert len(src.reads) == 2 * reads


def test_another_source_is_read_at_once() -> None:
    collector = InfoCollector({}, platform="generic")
    generic = _labels(collector, LocalSource(str(FIXTURES / "generic")))
    other = _labels(collector, LocalSource(str(FIXTURES / "qcs6490")))
    assert generic != other
