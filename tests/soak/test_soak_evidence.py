"""The pure figures behind the verdicts, on any points Prometheus could return."""

import math

from hypothesis import given
from hypothesis import strategies as st

from boardfleet.soak import evidence

finite = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False)
points = st.lists(st.tuples(st.floats(min_value=0, max_value=1e6), finite), max_size=60).map(
    lambda pts: sorted(dict(pts).items()))


@given(points)
def test_fit_is_none_or_sane(pts: list) -> None:
    f = evidence.fit(pts)
    if f is not None:
        assert math.isfinite(f.slope_per_hour) or abs(f.slope_per_hour) == math.inf
        assert 0.0 <= f.r2 <= 1.0 + 1e-9 and f.points == len(pts)


def test_fit_of_a_line() -> None:
    f = evidence.fit([(t * 60.0, 5.0 + 2.0 * t) for t in range(100)])
    assert f is not None and abs(f.slope_per_hour - 120.0) < 1e-6 and f.r2 > 0.999999


@given(points, st.floats(min_value=1, max_value=1000), st.floats(min_value=0, max_value=1e4))
def test_gaps_share_and_spans(pts: list, step: float, min_gap: float) -> None:
    share, gaps = evidence.gaps(pts, 0.0, 1e6, step, min_gap)
    assert 0.0 <= share <= 1.0
    for a, b in gaps:
        assert b >= a - step


def test_gaps_of_a_hole() -> None:
    ups = [(t, 1.0) for t in range(0, 3601, 60) if not 600 <= t < 1800]
    share, gaps = evidence.gaps(ups, 0, 3600, 60, 600)
    assert gaps == [(600, 1740)] and abs(share - 41 / 61) < 1e-9


@given(points, st.floats(min_value=0, max_value=1e6))
def test_reboots_and_segments(pts: list, start: float) -> None:
    at = evidence.reboots(pts, start)
    assert at == sorted(at) and all(t > start for t in at)
    for seg in evidence.segments(pts, at):
        assert len(seg) >= 3
        evidence.level(seg, True), evidence.level(seg, False)


def test_btime_jitter_is_not_a_reboot() -> None:
    boot = [(t, 1000.0 + (t % 2)) for t in range(100)] + [(100, 5000.0), (101, 5001.0)]
    assert evidence.reboots(boot, 2000.0) == [5000.0]
