"""Run one action on many boards in parallel, with progress lines and a summary.

A failing board never stops the others: every exception becomes that board's failed
:class:`Outcome`, naming the step and the remote stderr.
"""

import json
import os
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TextIO

from boardfleet.installer import Outcome, StepError
from boardfleet.inventory import Board, Inventory, atomic_write


def run(boards: Iterable[Board], action: Callable[[Board], Outcome], workers: int = 8,
        out: TextIO | None = None) -> list[Outcome]:
    """``action`` on every board, ``workers`` at a time; outcomes in board order."""
    out = out or sys.stdout
    boards = list(boards)
    lock = threading.Lock()
    results: dict[str, Outcome] = {}

    def one(board: Board) -> Outcome:
        try:
            return action(board)
        except StepError as e:
            return Outcome(board.name, "failed", error=e)
        except Exception as e:  # a bug or odd board must not stop the fleet
            return Outcome(board.name, "failed",
                           error=StepError("internal", "%s: %s" % (type(e).__name__, e)))

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(boards) or 1))) as pool:
        futures = {pool.submit(one, b): b for b in boards}
        for done, fut in enumerate(as_completed(futures), 1):
            o = fut.result()
            results[o.board] = o
            with lock:
                out.write("[%d/%d] %s: %s%s\n" % (done, len(boards), o.board, o.action,
                                                  _brief(o)))
                out.flush()
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
    failed = sum(o.action == "failed" for o in outcomes)
    out.write("\n%d boards, %d ok, %d failed\n" % (len(outcomes), len(outcomes) - failed,
                                                   failed))


def write_file_sd(inventory: Inventory, directory: str) -> str:
    """Write ``<directory>/boards.json`` (agent-mode boards) atomically; return its path.

    Mode 0644: Prometheus reads it as its own user (``prometheus`` on Debian).
    """
    path = os.path.join(directory, "boards.json")
    atomic_write(path, json.dumps(inventory.file_sd("agent"), indent=2) + "\n", mode=0o644)
    return path
