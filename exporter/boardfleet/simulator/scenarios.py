"""What a simulated board's numbers do over time, one function per scenario.

``t`` is seconds since the simulation started; ``ramp`` is how long a scenario takes to
unfold, so the same scenario serves a 12 s end-to-end test and a 30 minute demo.
"""

import math
from dataclasses import dataclass
from typing import Callable, Dict

BOOT_TIME = 1763500000

@dataclass(frozen=True)
class BoardState:
    """A simulated board's readings at one moment."""

    ddr_ratio: float          # DDR controller busy fraction (hiddrs)
    mmz_used_ratio: float     # share of the MMZ zone held by blocks
    temperature_c: float
    latency_ms: float         # inference latency the app reports over StatsD
    alive: bool = True        # False: the board is off (its agent is stopped)
    boot_time: int = BOOT_TIME  # /proc/stat btime: changes when the board reboots
    app_running: bool = True  # False: the app sends no timings (hung or restarting)


def _wobble(t: float, amplitude: float, period: float = 7.0) -> float:
    return amplitude * math.sin(2 * math.pi * t / period)


def idle(t: float, ramp: float) -> BoardState:
    return BoardState(ddr_ratio=0.12 + _wobble(t, 0.03), mmz_used_ratio=0.30,
                      temperature_c=52.0 + _wobble(t, 1.0, 11.0), latency_ms=8.0)


def ddr_saturation(t: float, ramp: float) -> BoardState:
    """DDR at 60-70 % from the start: above the 40 % rule."""
    return BoardState(ddr_ratio=0.65 + _wobble(t, 0.05), mmz_used_ratio=0.35,
                      temperature_c=68.0 + _wobble(t, 1.5, 11.0), latency_ms=12.0)


def mmz_leak(t: float, ramp: float) -> BoardState:
    """MMZ use climbs from 40 % to 99 % over ``ramp`` seconds, then stays there."""
    used = 0.40 + 0.59 * min(1.0, t / ramp)
    return BoardState(ddr_ratio=0.15 + _wobble(t, 0.03), mmz_used_ratio=used,
                      temperature_c=55.0, latency_ms=9.0)


def latency_spike(t: float, ramp: float) -> BoardState:
    """Inference latency jumps from 9 ms to 350 ms half-way through ``ramp``."""
    return BoardState(ddr_ratio=0.2 + _wobble(t, 0.03), mmz_used_ratio=0.35,
                      temperature_c=58.0, latency_ms=350.0 if t >= ramp / 2 else 9.0)


def board_dies(t: float, ramp: float) -> BoardState:
    """Idle until ``ramp`` seconds, then dead: its agent is stopped and files freeze."""
    return BoardState(**{**idle(t, ramp).__dict__, "alive": t < ramp})


def reboot(t: float, ramp: float) -> BoardState:
    """Idle; from ``ramp``/2 on, the board is off for ``ramp``/10 (at most 60 s) once every
    ``ramp`` seconds and comes back with a new boot time each time (shorter than BoardDown's
    ``for:``: only BoardRebooted sees it). Repeated, so a scraper that starts late still
    sees a reboot; simulated time runs faster, so each boot is a day after the one before
    (a boot time moving by less than a minute is clock jitter, not a reboot)."""
    down_at, down_for = ramp / 2, min(ramp / 10, 60.0)
    state = idle(t, ramp)
    if t < down_at:
        return state
    k, into = divmod(t - down_at, ramp)
    boot = BOOT_TIME + int(k + 1) * 86400 + int(down_at + k * ramp + down_for)
    return BoardState(**{**state.__dict__, "alive": into >= down_for, "boot_time": boot})


def restart_leak(t: float, ramp: float) -> BoardState:
    """HiSilicon MMZ is not freed when a process exits: the app restarts every
    ``ramp``/6 and each exit leaves 3 % of the zone behind. While it restarts (the first
    tenth of each period) its 30 % are free and it sends no timings."""
    period = ramp / 6
    restarts = int(t // period)
    restarting = restarts > 0 and t % period < period / 10
    leaked = 0.03 * restarts
    used = min(0.99, leaked + (0.0 if restarting else 0.30))
    return BoardState(ddr_ratio=0.15 + _wobble(t, 0.03), mmz_used_ratio=used,
                      temperature_c=55.0, latency_ms=9.0, app_running=not restarting)


def slow_leak(t: float, ramp: float) -> BoardState:
    """MMZ use creeps up by 10 % of the zone per ``ramp`` (1 MiB/h of 256 MiB is the
    field case; this is it, faster)."""
    return BoardState(ddr_ratio=0.15 + _wobble(t, 0.03),
                      mmz_used_ratio=min(0.95, 0.30 + 0.10 * t / ramp),
                      temperature_c=55.0, latency_ms=9.0)


def one_off(t: float, ramp: float) -> BoardState:
    """Pipeline start takes 25 % of the zone at ``ramp``/4 and a model load 15 % at
    ``ramp``/3, then nothing changes: no leak alert may fire."""
    used = 0.15 + (0.25 if t >= ramp / 4 else 0.0) + (0.15 if t >= ramp / 3 else 0.0)
    return BoardState(ddr_ratio=0.15 + _wobble(t, 0.03), mmz_used_ratio=used,
                      temperature_c=55.0, latency_ms=9.0)


def app_hang(t: float, ramp: float) -> BoardState:
    """The inference app stops reporting at ``ramp``/2; the board and agent live on."""
    return BoardState(**{**idle(t, ramp).__dict__, "app_running": t < ramp / 2})


def ddr_duty(t: float, ramp: float) -> BoardState:
    """DDR at 60 % three seconds in four, 20 % in between: sustained by share of time."""
    return BoardState(ddr_ratio=0.6 if t % 4 < 3 else 0.2, mmz_used_ratio=0.35,
                      temperature_c=60.0, latency_ms=11.0)


def exhausted_dies(t: float, ramp: float) -> BoardState:
    """MMZ 99 % used from the start; the board dies at ``ramp``: its critical alert must
    hold until BoardDown takes over."""
    return BoardState(ddr_ratio=0.15 + _wobble(t, 0.03), mmz_used_ratio=0.99,
                      temperature_c=55.0, latency_ms=9.0, alive=t < ramp)


SCENARIOS: Dict[str, Callable[[float, float], BoardState]] = {
    "idle": idle,
    "ddr-saturation": ddr_saturation,
    "mmz-leak": mmz_leak,
    "latency-spike": latency_spike,
    "board-dies": board_dies,
    "reboot": reboot,
    "restart-leak": restart_leak,
    "slow-leak": slow_leak,
    "one-off": one_off,
    "app-hang": app_hang,
    "ddr-duty": ddr_duty,
    "exhausted-dies": exhausted_dies,
}
