"""Sysroot paths that vanish and come back, at a chosen moment of a scrape."""

import fnmatch
import os
from pathlib import Path
from typing import Callable, Iterable, List, Sequence, Tuple

from boardfleet_agent.source import LocalSource


def board_paths(root: Path) -> Tuple[List[str], List[str]]:
    """(files, directories) under a sysroot as board paths; symlinks count as files."""
    files: List[str] = []
    dirs: List[str] = []
    for here, subdirs, names in os.walk(str(root)):
        rel = os.path.relpath(here, str(root)).replace(os.sep, "/")
        board = "/" if rel == "." else "/" + rel + "/"
        dirs += [board + d for d in subdirs]
        files += [board + n for n in names]
    return sorted(files), sorted(dirs)


def under(path: str, top: str) -> bool:
    """``path`` is ``top`` or lies inside it."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def matches(path: str, pattern: str) -> bool:
    """Shell-glob match where ``*`` never crosses ``/`` (the sources' glob rule)."""
    have, want = path.split("/"), pattern.split("/")
    return len(have) == len(want) and all(
        fnmatch.fnmatchcase(h, w) for h, w in zip(have, want, strict=True))


def outermost(paths: Iterable[str]) -> List[str]:
    """The paths without those inside another one (moving the outer one moves them)."""
    chosen = sorted(set(paths))
    return [p for p in chosen if not any(q != p and under(p, q) for q in chosen)]


class Vanisher:
    """Moves board paths out of a sysroot and back: renames, as atomic as the kernel's."""

    def __init__(self, root: Path, stash: Path, paths: Iterable[str]) -> None:
        stash.mkdir(exist_ok=True)
        self.moves = [(root / p.lstrip("/"), stash / str(i))
                      for i, p in enumerate(outermost(paths))]

    def away(self) -> None:
        for there, aside in self.moves:
            os.rename(str(there), str(aside))

    def back(self) -> None:
        for there, aside in self.moves:
            if os.path.lexists(str(aside)):
                os.rename(str(aside), str(there))


class TriggerSource(LocalSource):
    """A LocalSource that calls an action right after its n-th operation.

    Operations are reads, globs, existence checks, readlinks, identities, statvfs and
    tool lookups; ``trace`` keeps each one's path or pattern. Firing after operation n
    puts a vanish exactly between a listing and the reads that follow it, at the point a
    test chose; a racing thread only makes such points likely.
    """

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.trace: List[str] = []
        self._at = 0
        self._action: Callable[[], None] | None = None

    @property
    def ops(self) -> int:
        return len(self.trace)

    def arm(self, at: int = 0, action: Callable[[], None] | None = None) -> None:
        """Trace from scratch; call ``action`` right after operation ``at`` (1-based)."""
        self.trace = []
        self._at = at
        self._action = action

    def _tick(self, what: str) -> None:
        self.trace.append(what)
        if self.ops == self._at and self._action is not None:
            self._action()

    def read_text(self, path: str) -> str:
        try:
            return super().read_text(path)
        finally:
            self._tick(path)

    def exists(self, path: str) -> bool:
        try:
            return super().exists(path)
        finally:
            self._tick(path)

    def glob(self, pattern: str) -> List[str]:
        try:
            return super().glob(pattern)
        finally:
            self._tick(pattern)

    def readlink(self, path: str) -> str:
        try:
            return super().readlink(path)
        finally:
            self._tick(path)

    def listdir(self, path: str) -> List[str]:
        try:
            return super().listdir(path)
        finally:
            self._tick(path)

    def identity(self, path: str) -> Tuple[int, int, int] | None:
        try:
            return super().identity(path)
        finally:
            self._tick(path)

    def statvfs(self, path: str) -> os.statvfs_result:
        try:
            return super().statvfs(path)
        finally:
            self._tick(path)

    def find_tool(self, tool: str) -> str | None:
        try:
            return super().find_tool(tool)
        finally:
            self._tick(tool)


def touches(what: str, vanished: str, entries: Iterable[str]) -> bool:
    """An operation on ``what`` (a path or glob) looked at something in ``vanished``."""
    return any(under(e, vanished) and (matches(e, what) or under(what, e))
               for e in entries)


def covered(files: Sequence[str], vanished: Iterable[str], globs: Iterable[str]) -> bool:
    """Some file matching ``globs`` lies in a vanished path."""
    gone = list(vanished)
    pats = list(globs)
    return any(any(under(f, v) for v in gone) and any(matches(f, g) for g in pats)
               for f in files)
