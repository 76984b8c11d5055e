"""Parser for the output of HiSilicon's DDR statistic tool, ``hiddrs`` or ``bspddrs``.

``hiddrs`` prints a banner, then one line per interval: ``ddrc0[19.23%]`` (with
``-d 2``: ``ddrc0[x%] ddrc1[y%]``). ``bspddrs`` prints a frequency line, then
``ddrc[0][12.34%], rcount[<n>], wcount[<n>]``. Both run until killed.
"""

import re
from typing import Dict, List

from boardfleet_agent.errors import ParseError

_SAMPLE = re.compile(r"ddrc\[?(\d+)\]?\[(\d+(?:\.\d+)?)%\]")


def parse_ddrs(text: str) -> Dict[str, List[float]]:
    """Tool output -> {"ddrc0": [percent per interval, in order]}; banner lines skipped."""
    out: Dict[str, List[float]] = {}
    for line in text.splitlines():
        for ctrl, value in _SAMPLE.findall(line):
            out.setdefault("ddrc%d" % int(ctrl), []).append(float(value))
    return out


def ddr_utilization(text: str, samples: int) -> Dict[str, float]:
    """Mean utilisation (0..1) per controller over ``samples`` intervals.

    The first interval is dropped (the counters were armed mid-period); at most
    ``samples`` of the following ones are averaged, so the result does not depend on
    how many extra lines the tool printed before it was stopped.
    """
    found = parse_ddrs(text)
    if not found:
        raise ParseError("ddr statistic: no ddrc[..%%] lines in %r" % text[-200:])
    out = {}
    for ctrl, values in found.items():
        used = values[1:1 + max(1, samples)]
        if not used:
            raise ParseError("ddr statistic: %s printed only one interval" % ctrl)
        out[ctrl] = sum(used) / len(used) / 100.0
    return out
