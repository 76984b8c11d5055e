"""Pure figures from time series points: gaps, reboots, restarts, levels, line fits."""

import itertools
import math
import statistics
from dataclasses import dataclass
from typing import List, Sequence, Tuple

Points = Sequence[Tuple[float, float]]

# btime moves by a second or so between reads (NTP, rounding); a reboot moves it more.
REBOOT_MIN_SHIFT = 60.0


@dataclass
class Fit:
    slope_per_hour: float
    r2: float
    points: int


def fit(points: Points) -> Fit | None:
    """Least-squares line through ``points`` (slope per hour and R²); None if < 3 points."""
    if len(points) < 3:
        return None
    xs = [(t - points[0][0]) / 3600 for t, _ in points]
    ys = [v for _, v in points]
    if max(xs) == min(xs):
        return None
    slope, _ = statistics.linear_regression(xs, ys)
    if max(ys) == min(ys):
        return Fit(0.0, 1.0, len(points))
    r = statistics.correlation(xs, ys)
    return Fit(slope, r * r if math.isfinite(r) else 0.0, len(points))


def gaps(points: Points, start: float, end: float, step: float, min_gap: float
         ) -> Tuple[float, List[Tuple[float, float]]]:
    """Share of steps with the target up, and the (from, to) gaps at least ``min_gap`` long.

    ``points`` are ``up`` samples at the query steps; a missing step or ``up == 0`` is a gap.
    """
    expected = round((end - start) / step) + 1
    up = sorted(t for t, v in points if v >= 1)
    share = min(1.0, len(up) / expected) if expected > 0 else 0.0
    out = []
    edges = [start - step, *up, end + step]
    for a, b in itertools.pairwise(edges):
        if b - a > step * 1.5 and (b - a - step) >= min_gap:
            out.append((a + step, b - step))
    return share, out


def reboots(boot_times: Points, start: float) -> List[float]:
    """Boot times (btime values) that fall after ``start``: one per reboot in the window."""
    seen: List[float] = []
    for _, btime in boot_times:
        if btime > start and all(abs(btime - s) > REBOOT_MIN_SHIFT for s in seen):
            seen.append(btime)
    return sorted(seen)


def level(points: Points, first: bool) -> float:
    """The settled level at the start (or end) of a segment: median of a slice.

    The very first samples are skipped, so a one-off allocation at pipeline start is
    not counted as a loss.
    """
    n = len(points)
    k = max(3, n // 20)
    skip = max(1, n // 50) if first else 0
    chunk = points[skip:skip + k] if first else points[-k:]
    return statistics.median(v for _, v in (chunk or points))


def segments(points: Points, cuts: Sequence[float]) -> List[List[Tuple[float, float]]]:
    """Split ``points`` at the times in ``cuts`` (reboots); drop segments of < 3 points."""
    out: List[List[Tuple[float, float]]] = [[]]
    cuts = sorted(cuts)
    i = 0
    for t, v in points:
        while i < len(cuts) and t >= cuts[i]:
            out.append([])
            i += 1
        out[-1].append((t, v))
    return [s for s in out if len(s) >= 3]


def share_above(points: Points, bound: float) -> float:
    return sum(1 for _, v in points if v > bound) / len(points) if points else 0.0
