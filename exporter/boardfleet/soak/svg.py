"""Line charts as inline SVG: time on x, one polyline per series, optional bound line.

Hand-written rather than matplotlib: a report draws up to four charts per board, and
matplotlib took 38-47 ms a chart against 0.8 ms for these (benchmarks/soak_report.py,
benchmarks/RESULTS.md), which is 30 s of a 200-board report; these also need no font
cache or backend.
"""

import math
from datetime import UTC, datetime
from html import escape
from typing import Mapping, Sequence, Tuple

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 220, 56, 130, 22, 28


def chart(title: str, series: Mapping[str, Sequence[Tuple[float, float]]],
          start: float, end: float, bound: float | None = None, bound_label: str = "") -> str:
    """An SVG element (string) for ``series``; ``bound`` draws a dashed horizontal line."""
    values = [v for pts in series.values() for _, v in pts]
    if bound is not None:
        values.append(bound)
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    lo = min(lo, 0.0) if lo >= 0 and lo < hi * 0.5 else lo
    if hi == lo:
        hi, lo = hi + 1, lo - 1 if lo != 0 else 0
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    span = (end - start) or 1.0

    def x(t: float) -> float:
        return LEFT + (t - start) / span * pw

    def y(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * ph

    parts = ['<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             'width="%d" height="%d" viewBox="0 0 %d %d" aria-label="%s">'
             % (W, H, W, H, escape(title)),
             '<text x="%d" y="14" class="title">%s</text>' % (LEFT, escape(title)),
             '<rect x="%d" y="%d" width="%d" height="%d" class="frame"/>'
             % (LEFT, TOP, pw, ph)]
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>'
                     '<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>'
                     % (LEFT, LEFT + pw, y(v), y(v), LEFT - 4, y(v) + 4, _num(v, hi - lo)))
    for i in range(5):
        t = start + span * i / 4
        parts.append('<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>'
                     % (x(t), H - 8, _time(t, span)))
    if bound is not None:
        parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="bound"/>'
                     '<text x="%d" y="%.1f" class="tick">%s</text>'
                     % (LEFT, LEFT + pw, y(bound), y(bound), LEFT + pw + 4, y(bound) + 4,
                        escape(bound_label)))
    for i, (name, pts) in enumerate(sorted(series.items())):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join("%.1f,%.1f" % (x(t), y(v)) for t, v in pts)
        parts.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="1.3"/>'
                     % (path, colour))
        ly = TOP + 12 + 14 * i
        if ly < H - BOTTOM:
            parts.append('<rect x="%d" y="%d" width="10" height="3" fill="%s"/>'
                         '<text x="%d" y="%d" class="tick">%s</text>'
                         % (LEFT + pw + 6, ly - 4, colour, LEFT + pw + 20, ly,
                            escape(name[:18])))
    parts.append("</svg>")
    return "".join(parts)


def _num(v: float, span: float) -> str:
    """A tick label with as many decimals as the axis' tick spacing needs."""
    step = span / 4
    decimals = max(0, min(6, math.ceil(-math.log10(step)))) if 0 < step < 1 else 0
    return "%.*f" % (decimals, v)


def _time(t: float, span: float) -> str:
    fmt = "%m-%d %H:%M" if span > 86400 else "%H:%M"
    return datetime.fromtimestamp(t, UTC).strftime(fmt)
