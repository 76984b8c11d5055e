"""Board selectors: which inventory boards a soak run or report covers.

A selector is a list of terms separated by commas or spaces:

* ``hi3516-rack1-03`` or ``hi3516-*``: a board name or a shell-style glob;
* ``rack=r1``, ``owner!=vision``, ``platform=hisi``: a label (inventory labels plus
  ``platform`` and ``mode``) equal or not equal to a value;
* ``all`` (or ``*``): every board.

Names and globs add boards (any of them); label terms then narrow (all of them), so
``hi3516-*,rack=r1`` is the Hi3516 boards in rack r1, and ``owner=vision`` alone is every
board owned by vision.
"""

import fnmatch
import re
from typing import Iterable, List

from boardfleet.inventory import Board
from boardfleet.soak.store import NotFound, SoakError

_LABEL_TERM = re.compile(r"^([a-zA-Z_][a-zA-Z0-9_]*)(!=|=)(.*)$")


def _labels(board: Board) -> dict:
    return {**board.labels, "platform": board.platform, "mode": board.mode}


def select(boards: Iterable[Board], selector: str) -> List[str]:
    """Names of the boards ``selector`` matches, sorted; :class:`SoakError` if none or bad."""
    boards = list(boards)
    terms = [t for t in re.split(r"[,\s]+", selector or "") if t]
    if not terms:
        raise SoakError("empty board selector (use names, globs, label=value or all)")
    names, labels = [], []
    for term in terms:
        m = _LABEL_TERM.match(term)
        if m:
            labels.append(m.groups())
        elif "=" in term or any(ord(c) < 32 for c in term):
            raise SoakError("selector term %r is neither a board name nor label=value" % term)
        else:
            names.append(term)
    known = {b.name for b in boards}
    for name in names:
        if name not in ("all", "*") and not any(c in name for c in "*?[") and name not in known:
            raise NotFound("selector: board %r is not in the inventory" % name)
    chosen = [b for b in boards if not names or any(
        n in ("all", "*") or fnmatch.fnmatchcase(b.name, n) for n in names)]
    for key, op, value in labels:
        chosen = [b for b in chosen if (_labels(b).get(key) == value) == (op == "=")]
    if not chosen:
        raise NotFound("selector %r matches no board of the inventory" % selector)
    return sorted(b.name for b in chosen)
