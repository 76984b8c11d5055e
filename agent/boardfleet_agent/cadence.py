"""The scraper's cadence, learned from when scrapes arrive, to read just before the next.

Prometheus scrapes a target at a fixed interval and a fixed offset, so after a few
scrapes the next one is predictable to a few milliseconds. The on-demand runner reads
its quick collectors ``lead`` seconds before the predicted scrape: the scrape is then
served at once, with values ``lead`` seconds old, for the CPU of the round it would
have waited for anyway. Scrapes that come irregularly (several scrapers, ad-hoc
``curl``) teach no cadence and are served on demand as before.
"""

from typing import Optional, Sequence

# Asks kept, and how evenly spaced the last ones must be to count as a cadence.
KEEP = 5
TOLERANCE = 0.05  # of the period
MIN_TOLERANCE = 0.02  # seconds


def period(asks: Sequence[float]) -> Optional[float]:
    """The interval between the last asks if the last ``KEEP - 1`` intervals agree."""
    if len(asks) < KEEP:
        return None
    last = list(asks)[-KEEP:]
    gaps = [b - a for a, b in zip(last, last[1:])]
    mean = sum(gaps) / len(gaps)
    if mean <= 0 or any(abs(g - mean) > max(TOLERANCE * mean, MIN_TOLERANCE) for g in gaps):
        return None
    return mean


def next_ask(asks: Sequence[float], now: float, done: Optional[float],
             min_period: float) -> Optional[float]:
    """When the next scrape should come (monotonic), not one already read for (``done``);
    None without a cadence of at least ``min_period``, or once the scraper missed two."""
    p = period(asks)
    if p is None or p < min_period:
        return None
    last = asks[-1]
    if now - last > 2 * p:
        return None  # the scraper went away: read on demand again
    t = last + p
    while t <= now or (done is not None and abs(t - done) < p / 2):
        t += p
    return t
