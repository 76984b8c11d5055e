"""Parser for HiSilicon video buffer pools, ``/proc/umap/vb``.

Each pool is a ``PoolId PhysAddr VirtAddr IsComm Owner BlkSz BlkCnt Free MinFree``
header line (with a trailing space) and one value line, optionally followed by a
``BLK`` owner table that is printed only when some block is busy.
"""

from typing import Dict, List, NamedTuple

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.hisi_umap import integer, is_value_line

POOL_COLUMNS = ("PoolId", "IsComm", "BlkSz", "BlkCnt", "Free", "MinFree")


class VbPool(NamedTuple):
    pool: int
    common: bool  # IsComm 1: a common pool (Owner -1); 0: a private pool (Owner -2)
    block_bytes: int
    blocks: int
    free_blocks: int
    min_free_blocks: int  # lowest Free seen; 0 means frames may have been dropped


def parse_vb(text: str) -> List[VbPool]:
    """``/proc/umap/vb`` -> pools in file order (empty when no pool is created)."""
    lines = [line.split() for line in text.splitlines()]
    pools: List[VbPool] = []
    for i, tokens in enumerate(lines):
        if not tokens or tokens[0] != "PoolId" or "BlkCnt" not in tokens:
            continue
        values = next((t for t in lines[i + 1:] if t), [])
        if not is_value_line(values) or len(values) < len(tokens):
            raise ParseError("/proc/umap/vb: pool header without values (file cut short?)")
        row: Dict[str, str] = dict(zip(tokens, values))
        missing = [c for c in POOL_COLUMNS if c not in row]
        if missing:
            raise ParseError("/proc/umap/vb: pool table lacks %s" % ", ".join(missing))
        n = {c: integer(row[c], "/proc/umap/vb") for c in POOL_COLUMNS}
        if any(p.pool == n["PoolId"] for p in pools):
            raise ParseError("/proc/umap/vb: pool %d listed twice" % n["PoolId"])
        pools.append(VbPool(n["PoolId"], n["IsComm"] != 0, n["BlkSz"], n["BlkCnt"],
                            n["Free"], n["MinFree"]))
    if not pools and "[VB]" not in text and "MaxPoolCnt" not in text:
        raise ParseError("/proc/umap/vb: neither a version line nor a pool table")
    return pools
