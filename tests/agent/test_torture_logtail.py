"""Torture: the log tail keeps following when one path turns hostile (issue 13, 5)."""

import os
import threading
from pathlib import Path

import pytest

from boardfleet_agent.inference.logtail import (
    MAX_LINE,
    FileFollower,
    LogPattern,
    LogStats,
    LogTailer,
)

HANG = 30.0
FPS = LogPattern.named_or_regex(r"fps=(?P<fps>\d+(?:\.\d+)?)")


def poll_within_bound(tailer: LogTailer) -> None:
    t = threading.Thread(target=tailer.poll_once, daemon=True)
    t.start()
    t.join(HANG)
    assert not t.is_alive(), "a poll blocked"


def test_a_fifo_at_one_path_does_not_freeze_the_others(tmp_path: Path) -> None:
    fifo, good = tmp_path / "fifo.log", tmp_path / "good.log"
    os.mkfifo(str(fifo))
    good.write_text("")
    stats = LogStats()
    tailer = LogTailer([(FileFollower(str(fifo), True), FPS, "a"),
                        (FileFollower(str(good), True), FPS, "b")], stats)
    poll_within_bound(tailer)
    with good.open("a") as f:
        f.write("fps=30\n")
    poll_within_bound(tailer)
    assert stats.fps == {"b": 30.0}
    # The FIFO is replaced by a log file: followed from its start.
    fifo.unlink()
    fifo.write_text("fps=12\n")
    poll_within_bound(tailer)
    assert stats.fps == {"a": 12.0, "b": 30.0}
    tailer.stop()


def test_the_tail_of_an_oversized_line_is_not_a_record(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    stats = LogStats()
    tailer = LogTailer([(FileFollower(str(log), True), FPS, "m")], stats)
    poll_within_bound(tailer)
    with log.open("a") as f:
        f.write("a" * (MAX_LINE + 100))  # no newline yet: more than a line may hold
    poll_within_bound(tailer)
    with log.open("a") as f:
        f.write(" fps=99\n")  # the end of the long line
    poll_within_bound(tailer)
    assert stats.fps == {}
    with log.open("a") as f:
        f.write("fps=25\n")  # the next line is a record again
    poll_within_bound(tailer)
    assert stats.fps == {"m": 25.0}
    tailer.stop()


def test_lag_behind_a_fast_writer_is_visible_and_bounded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boardfleet_agent.inference.logtail as logtail_mod

    log = tmp_path / "app.log"
    log.write_text("")
    stats = LogStats()
    follower = FileFollower(str(log), True)
    tailer = LogTailer([(follower, FPS, "m")], stats)
    poll_within_bound(tailer)
    line = b"frame done fps=10 " + b"x" * 80 + b"\n"
    with log.open("ab") as f:
        f.write(line * (3 * logtail_mod.MAX_READ // len(line)))
    poll_within_bound(tailer)  # one poll reads MAX_READ: the rest is the lag
    assert stats.lag["m"] > logtail_mod.MAX_READ
    families = {fam.name: fam for fam in stats.collect()}
    assert families["board_inference_log_lag_bytes"].samples[0].value == stats.lag["m"]
    # Further behind than MAX_LAG: the tail jumps to the end and counts what it skipped.
    monkeypatch.setattr(logtail_mod, "MAX_LAG", logtail_mod.MAX_READ // 2)
    with log.open("ab") as f:
        f.write(line * 1000 + b"cut short at the jump fps=99")
    poll_within_bound(tailer)
    assert follower.skipped > 0 and stats.skipped["m"] == follower.skipped
    with log.open("ab") as f:
        f.write(b" tail\nfps=7\n")
    poll_within_bound(tailer)
    assert stats.fps["m"] == 7.0 and stats.lag["m"] == 0
    tailer.stop()
