"""What an agentless probe reads: never one file per process or per fd."""

import pytest

from boardfleet.inventory import Board
from boardfleet.probe import Prober, probed_collectors


@pytest.mark.parametrize("platform", ["hisi", "horizon", "snapdragon", "generic"])
def test_heavy_per_process_collectors_are_not_probed(platform: str) -> None:
    names = {c.name for c in probed_collectors(platform)}
    assert "processes" not in names and "dmabuf_process" not in names
    assert "cpu" in names


def test_platform_detection_batch_skips_per_fd_paths() -> None:
    _, classes, patterns = Prober(pool=None).plan(Board(name="b", host="127.0.0.1"))
    assert classes and not any("fdinfo" in p for p in patterns)
    assert not any(c.name == "processes" for c in classes)
