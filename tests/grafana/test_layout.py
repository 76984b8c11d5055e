"""The grid placement for any mix of panel sizes and rows (hypothesis)."""

from itertools import combinations
from typing import Dict, List, Tuple

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import text as txt
from hypothesis import given
from hypothesis import strategies as st

from boardfleet.dashboards.layout import COLUMNS, Layout

Size = Tuple[int, int]
sizes = st.lists(st.tuples(st.integers(1, COLUMNS), st.integers(1, 12)), max_size=8)
sections = st.lists(st.tuples(st.sampled_from(["panels", "open", "collapsed"]), sizes),
                    max_size=6)


def _panel(w: int, h: int) -> txt.Panel:
    return txt.Panel().title("%dx%d" % (w, h)).span(w).height(h)


def _overlap(a: Dict, b: Dict) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


@given(sections)
def test_panels_stay_on_the_grid_without_overlap(plan: List[Tuple[str, List[Size]]]) -> None:
    layout = Layout(db.Dashboard("t"))
    for kind, items in plan:
        panels = [_panel(w, h) for w, h in items]
        if kind == "panels":
            layout.panels(panels)
        else:
            layout.row(kind, panels, collapsed=kind == "collapsed")
    built = layout.dashboard.build()
    top = [p.grid_pos for p in built.panels or []]
    groups = [top] + [[q.grid_pos for q in p.panels] for p in built.panels or []
                      if getattr(p, "collapsed", False)]
    for group in groups:
        boxes = [{"x": g.x, "y": g.y, "w": g.w, "h": g.h} for g in group]
        for b in boxes:
            assert b["x"] >= 0 and b["x"] + b["w"] <= COLUMNS and b["w"] >= 1
        for a, b in combinations(boxes, 2):
            assert not _overlap(a, b), (a, b)
    rows = [p for p in built.panels or [] if p.grid_pos.w == COLUMNS and hasattr(p, "collapsed")]
    for row in rows:
        assert row.grid_pos.x == 0 and row.grid_pos.h == 1
        for q in row.panels or []:
            assert q.grid_pos.y > row.grid_pos.y
