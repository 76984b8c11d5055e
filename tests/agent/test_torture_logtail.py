"""Torture: the log tail keeps following when one path turns hostile (issue 13, 5)."""

import os
import threading
from pathlib import Path

from boardfleet_agent.logtail import MAX_LINE, FileFollower, LogPattern, LogStats, LogTailer

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
