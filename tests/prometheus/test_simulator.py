"""The simulator's scenarios have the shapes the rules are tested against, and its
/proc/stat CPU counters never run backwards within one boot."""

from itertools import pairwise
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from boardfleet.simulator.scenarios import BOOT_TIME, SCENARIOS, BoardState
from boardfleet.simulator.sysroot import CpuTimes, write_sysroot

RAMP = 60.0


def _states(name: str, step: float = 0.5, until: float = 3 * RAMP) -> list:
    return [SCENARIOS[name](i * step, RAMP) for i in range(int(until / step))]


def _stat(root: Path) -> tuple:
    fields = (root / "proc/stat").read_text().split("\n")[0].split()
    return int(fields[1]), int(fields[4]), int((root / "proc/stat").read_text()
                                              .split("btime ")[1])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(-5.0, 30.0)), min_size=1,
                max_size=30))
def test_cpu_counters_never_run_backwards(steps: list) -> None:
    cpu = CpuTimes()
    last = (0.0, 0.0)
    for ddr, dt in steps:
        state = BoardState(ddr_ratio=ddr, mmz_used_ratio=0.3, temperature_c=50.0,
                           latency_ms=9.0)
        cpu.advance(state, dt)
        assert cpu.busy >= last[0] and cpu.idle >= last[1]
        last = (cpu.busy, cpu.idle)


def test_reboot_restarts_the_counters_and_moves_btime(tmp_path: Path) -> None:
    cpu = CpuTimes()
    seen = []
    for i, state in enumerate(_states("reboot")):
        if state.alive:
            cpu.advance(state, 0.5 if i else 0.0)
            write_sysroot(tmp_path, state, cpu)
            seen.append(_stat(tmp_path))
    boots = [b for i, (_, _, b) in enumerate(seen) if i == 0 or b != seen[i - 1][2]]
    # Over three ramps: booted, then a reboot at 0.5, 1.5 and 2.5 ramps, each boot later.
    assert boots[0] == BOOT_TIME and len(boots) == 4 and boots[1] - BOOT_TIME > 3600
    assert all(b - a > 3600 for a, b in pairwise(boots))  # each one a reboot, not jitter
    runs = [[s for s in seen if s[2] == b] for b in boots]
    for before, after in pairwise(runs):          # a new boot starts from zero ...
        assert after[0][0] < before[-1][0]
    for run in runs:                              # ... and counts up within a boot
        assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in pairwise(run))
    down = [not s.alive for s in _states("reboot")]
    assert any(down) and down[-1] is False        # off for a while, each time back


def test_restart_leak_low_water_mark_sinks_at_every_restart() -> None:
    period = RAMP / 6
    lows = [min(s.mmz_used_ratio for s in _states("restart-leak", 0.1, RAMP)
                [int(k * period / 0.1) + 1:int((k + 1) * period / 0.1)])
            for k in range(1, 5)]
    assert all(b > a for a, b in pairwise(lows)), lows
    assert any(not s.app_running for s in _states("restart-leak"))


def test_one_off_allocations_are_two_steps_then_flat() -> None:
    used = [s.mmz_used_ratio for s in _states("one-off")]
    changes = [i for i, (a, b) in enumerate(pairwise(used)) if a != b]
    assert len(changes) == 2 and used[-1] == used[changes[1] + 1]


def test_app_hang_stops_timings_and_ddr_duty_is_three_in_four() -> None:
    hang = _states("app-hang")
    assert hang[0].app_running and not hang[-1].app_running and hang[-1].alive
    duty = [s.ddr_ratio > 0.4 for s in _states("ddr-duty", 0.25, 40.0)]
    assert abs(sum(duty) / len(duty) - 0.75) < 0.02
    dies = _states("exhausted-dies")
    assert dies[0].mmz_used_ratio > 0.95 and dies[0].alive and not dies[-1].alive
