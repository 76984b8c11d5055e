"""Parser for HiSilicon video buffer pools, ``/proc/umap/vb``.

Each pool is a header line and one value line, optionally followed by a ``BLK`` owner
table that is printed only when some block is busy. The header is read by name, in
either generation's spelling:

* Hi35xx SDKs: ``PoolId PhysAddr VirtAddr IsComm Owner BlkSz BlkCnt Free MinFree``;
* SS928/Hi3403 (OT) SDKs: ``pool_id phys_addr virt_addr is_comm owner blk_sz blk_cnt
  free_list min_free``, printed with ``%-8s`` so ``free_list`` runs into ``min_free``
  (``free_listmin_free``; MPP source ``vb_proc_show_module_pool``).

Columns it does not know are ignored. Parsing policy (docs/metrics.md): a pool whose
value line is missing, cut short or lacks a needed column is skipped and counted; a file
with neither a version line nor a pool header, or whose every pool was skipped, raises
ParseError.
"""

from typing import Dict, List, NamedTuple, Optional

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.hisi_umap import integer, is_value_line
from boardfleet_agent.parsers.lines import Skips, complete_lines, skip

# Both spellings of the columns read, mapped to one name each.
COLUMNS = {
    "PoolId": "pool", "pool_id": "pool",
    "IsComm": "common", "is_comm": "common",
    "BlkSz": "block_bytes", "blk_sz": "block_bytes",
    "BlkCnt": "blocks", "blk_cnt": "blocks",
    "Free": "free", "free_list": "free",
    "MinFree": "min_free", "min_free": "min_free",
}
NEEDED = ("pool", "common", "block_bytes", "blocks", "free", "min_free")
_GLUED = {"free_listmin_free": ["free_list", "min_free"]}


class VbPool(NamedTuple):
    pool: int
    common: bool  # IsComm 1: a common pool (Owner -1); 0: a private pool (Owner -2)
    block_bytes: int
    blocks: int
    free_blocks: int
    min_free_blocks: int  # lowest Free seen; 0 means frames may have been dropped


def parse_vb(text: str, skips: Optional[Skips] = None) -> List[VbPool]:
    """``/proc/umap/vb`` -> pools in file order (empty when no pool is created)."""
    lines = [_header_tokens(line.split()) for line in complete_lines(text)]
    pools: List[VbPool] = []
    headers = 0
    for i, tokens in enumerate(lines):
        if not tokens or tokens[0] not in ("PoolId", "pool_id") or (
                "BlkCnt" not in tokens and "blk_cnt" not in tokens):
            continue
        headers += 1
        values = next((t for t in lines[i + 1:] if t), [])
        pool = _pool(tokens, values)
        if pool is None or any(p.pool == pool.pool for p in pools):
            skip(skips, " ".join(values) or "(no values after a pool header)", "/proc/umap/vb")
            continue
        pools.append(pool)
    if headers and not pools:
        raise ParseError("/proc/umap/vb: no pool's values could be read (file cut short?)")
    if not headers and "[VB]" not in text and "MaxPoolCnt" not in text \
            and "max_pool_cnt" not in text:
        raise ParseError("/proc/umap/vb: neither a version line nor a pool table")
    return pools


def _header_tokens(tokens: List[str]) -> List[str]:
    out: List[str] = []
    for t in tokens:
        out.extend(_GLUED.get(t, [t]))
    return out


def _pool(header: List[str], values: List[str]) -> Optional[VbPool]:
    """The pool of one value line, or None if it is not one (cut, short, damaged)."""
    if not is_value_line(values) or len(values) < len(header):
        return None
    row: Dict[str, str] = {}
    for name, value in zip(header, values):
        if name in COLUMNS:
            row[COLUMNS[name]] = value
    if any(c not in row for c in NEEDED):
        return None
    try:
        n = {c: integer(row[c], "/proc/umap/vb") for c in NEEDED}
    except ParseError:
        return None
    return VbPool(n["pool"], n["common"] != 0, n["block_bytes"], n["blocks"], n["free"],
                  n["min_free"])
