"""What a simulated board's numbers do over time, one function per scenario."""

import math
from dataclasses import dataclass
from typing import Callable, Dict


@dataclass(frozen=True)
class BoardState:
    """A simulated board's readings at one moment."""

    ddr_ratio: float          # DDR controller busy fraction (hiddrs)
    mmz_used_ratio: float     # share of the MMZ zone held by blocks
    temperature_c: float
    latency_ms: float         # inference latency the app reports over StatsD
    alive: bool = True


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


SCENARIOS: Dict[str, Callable[[float, float], BoardState]] = {
    "idle": idle,
    "ddr-saturation": ddr_saturation,
    "mmz-leak": mmz_leak,
    "latency-spike": latency_spike,
    "board-dies": board_dies,
}
