"""Parser for HiSilicon SVP accelerator proc files: utilisation and interrupt counts.

One reader serves ``/proc/umap/svp_nnn`` and ``svp_npu`` (SS928 class, [doc] template and
[code] monitors), ``/proc/umap/ive`` ([seen]) and ``/proc/umap/nnie`` (layout only
**inferred**: no real capture exists; assumed to be the IVE template with a leading
``CoreId`` column, one row per core). Sections are found by their dashed titles, never
by line number, and wrapped tables are read as (column names, values) pairs, so
reordered or extra sections and columns are tolerated.

The core of a row comes from the ``device_id``/``CoreId`` column of the row itself or,
for a wrapped continuation without it, from the same row of the section's first table
that has it; with no such column there is one core, ``"0"``. Parsing policy
(docs/metrics.md): a row whose utilisation or interrupt value is damaged is skipped and
counted, the other rows are kept; a last line cut short is dropped.
"""

import re
from typing import Dict, List, NamedTuple, Optional

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.hisi_umap import groups, integer, percent, sections
from boardfleet_agent.parsers.lines import Skips, skip

CORE_COLUMNS = ("device_id", "CoreId")
INTERRUPT_COLUMNS = ("total_irq_cnt", "TotalIntCnt")
# svp_nnn/svp_npu print hw_utilization ("0%"); IVE prints Utili (a percentage).
_UTILIZATION = re.compile(r"^(?:hw_utilization|utili\w*)$", re.IGNORECASE)


class AccelCore(NamedTuple):
    core: str
    utilization: Optional[float]  # 0..1
    interrupts: Optional[int]  # total interrupts since the driver loaded


def parse_accel(text: str, where: str, skips: Optional[Skips] = None) -> List[AccelCore]:
    """An SVP/IVE/NNIE proc file -> per-core utilisation and interrupt totals.

    Raises ParseError if no utilisation or interrupt value could be read at all.
    """
    util: Dict[str, float] = {}
    irqs: Dict[str, int] = {}
    for sec in sections(text):
        section_cores: List[str] = []
        for g in groups(sec.lines, where, skips):
            core_at = next((g.header.index(c) for c in CORE_COLUMNS if c in g.header), None)
            if core_at is not None and not section_cores:
                section_cores = [r[core_at] for r in g.rows if core_at < len(r)]
            for i, row in enumerate(g.rows):
                if core_at is not None and core_at < len(row):
                    core = row[core_at]
                else:
                    core = section_cores[i] if i < len(section_cores) else str(i)
                try:
                    for col, token in zip(g.header, row):
                        if _UTILIZATION.match(col):
                            util[core] = percent(token, where)
                        elif col in INTERRUPT_COLUMNS:
                            irqs[core] = integer(token, where)
                except ParseError:
                    skip(skips, " ".join(row), where)
    if not util and not irqs:
        raise ParseError("%s: no utilisation or interrupt value could be read" % where)
    return [AccelCore(c, util.get(c), irqs.get(c)) for c in sorted(set(util) | set(irqs))]
