"""One collector run and what it produced: the collector contract in one place."""

import time
from typing import List, Tuple

from boardfleet_agent.errors import NoData
from boardfleet_agent.families import Metric
from boardfleet_agent.registry import Collector
from boardfleet_agent.source import Source


class Outcome:
    """What one run of one collector produced."""

    __slots__ = ("absent", "duration", "error", "families", "stuck", "success")

    def __init__(self, families: List[Metric], success: bool, duration: float,
                 absent: bool = False, error: str = "", stuck: bool = False) -> None:
        self.families = families
        self.success = success
        self.duration = duration
        self.absent = absent
        self.error = error
        self.stuck = stuck  # overran its deadline: a read is blocked


def run_collector(collector: Collector, src: Source) -> Outcome:
    """Run one collector, never raising: failures become ``success=False``.

    A sample whose value is no float (a number too large for one, read from a procfs
    file) is dropped and fails the collector, so it cannot break the rendering of the
    other collectors' samples.
    """
    families: List[Metric] = []
    start = time.monotonic()
    try:
        for fam in collector.collect(src):
            families.append(fam)
    except NoData as e:
        return Outcome([], True, time.monotonic() - start, absent=True, error=str(e))
    except Exception as e:
        return Outcome(_valid(families)[0], False, time.monotonic() - start,
                       error="%s: %s" % (type(e).__name__, e))
    families, bad = _valid(families)
    if bad:
        return Outcome(families, False, time.monotonic() - start, error=bad)
    return Outcome(families, True, time.monotonic() - start)


def _valid(families: List[Metric]) -> Tuple[List[Metric], str]:
    """The families without samples whose value is not a float, and why one was cut."""
    bad = ""
    for fam in families:
        try:
            for s in fam.samples:
                float(s.value)
            continue
        except (OverflowError, TypeError, ValueError):
            pass
        kept = []
        for s in fam.samples:
            try:
                value = float(s.value)
            except (OverflowError, TypeError, ValueError) as e:
                bad = bad or "%s: %s value is not a number (%s)" % (
                    type(e).__name__, s.name, str(s.value)[:40])
                continue
            kept.append(s._replace(value=value))
        fam.samples = kept
    return families, bad
