"""Explicit grid positions: panels fill 24 columns left to right and wrap before overflow.

The SDK's own placement wraps only after a panel has overflowed and stacks collapsed
rows as if they were open, so every panel gets its ``gridPos`` here instead.
"""

from collections.abc import Sequence
from typing import Protocol

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dm

COLUMNS = 24


class Panel(Protocol):
    """Any of the SDK's panel builders: each has ``grid_pos``, but they share no base."""

    def build(self) -> dm.Panel: ...

    def grid_pos(self, grid_pos: dm.GridPos) -> cogbuilder.Builder[dm.Panel]: ...


class _Cursor:
    def __init__(self, y: int) -> None:
        self.x, self.y, self.line = 0, y, 0

    def place(self, panel: Panel) -> dm.GridPos:
        size = panel.build().grid_pos or dm.GridPos()
        w, h = min(size.w, COLUMNS), size.h
        if self.x + w > COLUMNS:
            self.newline()
        pos = dm.GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.line = max(self.line, h)
        return pos

    def newline(self) -> None:
        self.x, self.y, self.line = 0, self.y + self.line, 0


class Layout:
    """Adds panels and rows to a dashboard builder with explicit, non-overlapping positions."""

    def __init__(self, dashboard: db.Dashboard) -> None:
        self.dashboard = dashboard
        self._at = _Cursor(0)

    def panels(self, panels: Sequence[Panel]) -> "Layout":
        """Top-level panels, continuing the current line."""
        for p in panels:
            self.dashboard = self.dashboard.with_panel(p.grid_pos(self._at.place(p)))
        return self

    def row(self, title: str, panels: Sequence[Panel], collapsed: bool = True,
            repeat: str = "") -> "Layout":
        """A row; collapsed rows hold their panels (Grafana runs no query until opened)."""
        self._at.newline()
        row_y = self._at.y
        row = db.Row(title).grid_pos(dm.GridPos(h=1, w=COLUMNS, x=0, y=row_y))
        if repeat:
            row = row.repeat(repeat)
        if collapsed:
            inner = _Cursor(row_y + 1)
            for p in panels:
                row = row.with_panel(p.grid_pos(inner.place(p)))
            self.dashboard = self.dashboard.with_row(row.collapsed(True))
            self._at = _Cursor(row_y + 1)
        else:
            self.dashboard = self.dashboard.with_row(row.collapsed(False))
            self._at = _Cursor(row_y + 1)
            self.panels(panels)
        return self
