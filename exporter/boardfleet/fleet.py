"""Run one action on many boards in parallel, with progress lines and a summary.

A failing board never stops the others: every exception becomes that board's failed
:class:`Outcome`, naming the step and the remote stderr.
"""

import json
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable
from typing import TextIO

from boardfleet.installer import Outcome, StepError
from boardfleet.inventory import Board, Inventory, atomic_write


def run(boards: Iterable[Board], action: Callable[[Board], Outcome], workers: int = 8,
        out: TextIO | None = None) -> list[Outcome]:
    """``action`` on every board, ``workers`` at a time; outcomes in board order.

    A line is printed as each board finishes. Ctrl-C stops cleanly: boards not started
    are skipped, boards in progress are abandoned (daemon threads, so the process can
    exit), both reported as ``interrupted``; what finished is returned for recording.
    """
    out = out or sys.stdout
    boards = list(boards)
    pending = iter(boards)
    take = threading.Lock()
    finished: queue.Queue[Outcome] = queue.Queue()
    stop = threading.Event()
    started: set[str] = set()

    def one(board: Board) -> Outcome:
        try:
            return action(board)
        except StepError as e:
            return Outcome(board.name, "failed", error=e)
        except Exception as e:  # a bug or odd board must not stop the fleet
            return Outcome(board.name, "failed",
                           error=StepError("internal", "%s: %s" % (type(e).__name__, e)))

    def worker() -> None:
        while not stop.is_set():
            with take:
                board = next(pending, None)
                if board is None:
                    return
                started.add(board.name)
            finished.put(one(board))

    for _ in range(max(1, min(workers, len(boards)))):
        threading.Thread(target=worker, daemon=True, name="fleet").start()
    results: dict[str, Outcome] = {}
    try:
        while len(results) < len(boards):
            try:
                o = finished.get(timeout=0.5)  # short waits keep Ctrl-C responsive
            except queue.Empty:
                continue
            results[o.board] = o
            out.write("[%d/%d] %s: %s%s\n" % (len(results), len(boards), o.board, o.action,
                                              _brief(o)))
            out.flush()
    except KeyboardInterrupt:
        stop.set()
        with take:
            for b in boards:
                if b.name not in results:
                    what = ("stopped by Ctrl-C while in progress; run the command again"
                            if b.name in started else "not started (Ctrl-C)")
                    results[b.name] = Outcome(b.name, "interrupted",
                                              error=StepError("interrupted", what))
        out.write("\ninterrupted: %d of %d boards finished\n"
                  % (sum(o.action != "interrupted" for o in results.values()), len(boards)))
    return [results[b.name] for b in boards]


def _brief(o: Outcome) -> str:
    if o.error:
        return " (%s)" % o.error.step
    if o.changed:
        return " (changed: %s)" % ", ".join(o.changed)
    return ""


def summary(outcomes: list[Outcome], out: TextIO | None = None) -> None:
    """Per-board table, then every failure in full (board, step, remote stderr)."""
    out = out or sys.stdout
    out.write("\n%-24s %-11s %s\n" % ("BOARD", "RESULT", "DETAIL"))
    for o in outcomes:
        detail = str(o.error).splitlines()[0] if o.error else (
            o.detail.splitlines()[0] if o.detail else "")
        out.write("%-24s %-11s %s\n" % (o.board, o.action, detail[:100]))
    for o in outcomes:
        if o.error:
            out.write("\n%s failed at %s\n" % (o.board, o.error))
    failed = sum(o.action in ("failed", "interrupted") for o in outcomes)
    out.write("\n%d boards, %d ok, %d failed\n" % (len(outcomes), len(outcomes) - failed,
                                                   failed))


def targets_dir(inventory_path: str, given: str | None) -> str:
    """``--targets-dir``, by default ``prometheus/targets`` next to the inventory (the
    repository layout: ``boards.yml`` at the top, Prometheus' file SD below it)."""
    return given or os.path.join(os.path.dirname(os.path.abspath(inventory_path)),
                                 "prometheus", "targets")


def write_file_sd(inventory: Inventory, directory: str) -> str:
    """Write ``<directory>/boards.json`` (agent-mode boards) atomically; return its path.

    Mode 0644: Prometheus reads it as its own user (``prometheus`` on Debian).
    """
    path = os.path.join(directory, "boards.json")
    atomic_write(path, json.dumps(inventory.file_sd("agent"), indent=2) + "\n", mode=0o644)
    return path
