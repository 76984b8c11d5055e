"""Parser for ION debugfs heap files (``/sys/kernel/debug/ion/heaps/<heap>``).

One grammar covers every layout seen on the fleet (all built on the kernel's
``ion_debug_heap_show``; see shared/docs/formats/horizon.md §1 and qualcomm.md §1a):

* Horizon X5/S100/J6 (kernel source, no capture): ``the heap id is N``, a capacity line
  ``<heap> heap total size <bytes>`` (or ``<heap> allocates from kernel heap``), client
  rows ``heap comm pid size``, buffer rows ``comm pid usage size kmap[ orphaned]``;
  ``heaps/all_heap_info`` repeats that block once per heap.
* Horizon X3 (4.14, kernel source): client rows ``comm pid size``, buffer rows
  ``comm pid usage 0x<phys> size kmap[ orphaned]``.
* Android/msm staging ION (captured): client rows ``comm pid size`` where kernel client
  names such as ``fd900000.qcom,mdss_mdp`` overflow their column, then
  ``orphaned allocations`` rows ``comm pid size kmap refcount``, or, on newer Android,
  ``client pid user user_pid size mcnt rcnt``; page-pool lines may trail the totals.

* Horizon J6 family (RDK S100/S600, issue 14; no public capture found): a per-buffer table
  read by its header ``client pid tgid type size kmap_cnt label shareid paddr``, rows
  marked ``orphaned`` at the end, then the usual totals. Any header that names ``client``
  (or ``name``), ``pid`` and ``size`` plus columns the other layouts lack is read this way:
  columns are found by name, unknown columns are ignored.

Names can hold spaces or be blank (``%16.s``), so numbers are taken from the right.
Parsing policy (docs/metrics.md): a last line cut short is dropped, a row that fits no
layout is skipped and counted in ``skips``; a heap with no usable line raises ParseError,
the only exception these pure functions raise.
"""

import re
from typing import Dict, List, NamedTuple, Optional, Tuple

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.lines import Skips, complete_lines, skip


class IonClient(NamedTuple):
    name: str  # task comm, or the kernel client name ("" when the kernel printed blanks)
    pid: int
    size: int


class IonBuffer(NamedTuple):
    name: str  # comm of the last known owner
    pid: int
    size: int
    usage: str  # Horizon usage type (bpu0, vpu, ...); "" where the layout has none
    orphaned: bool


class IonHeap(NamedTuple):
    name: str
    capacity: Optional[int]  # "heap total size"; None for kernel-backed heaps and old layouts
    used: Optional[int]  # the "total" line (J6 table without it: sum of its rows)
    orphaned: Optional[int]  # the "total orphaned" line (or the J6 orphaned rows' sum)
    deferred_free: Optional[int]
    clients: List[IonClient]
    buffers: List[IonBuffer]


_DASHES = re.compile(r"^-{8,}$")
_HEAP_ID = re.compile(r"^the heap id is\s*:?\s*\d+$")
_CAPACITY = re.compile(r"^(?:(\S+)\s+)?heap total size\s*:?\s*(\d+)$")
_KERNEL_HEAP = re.compile(r"^(\S+)\s+allocates from kernel heap$")
_TOTAL = re.compile(r"^(total orphaned|total|deferred free)\s+(\d+)$")
_HEADER_WORDS = frozenset(("heap", "name", "client", "pid", "size", "user", "user_pid",
                           "mcnt", "rcnt"))
_COLUMN_WORD = re.compile(r"^[a-z][a-z_]*$")
# Client and buffer rows are split into whitespace tokens from the right: the fixed
# numeric columns are the last tokens, and what is left is the name (which may hold
# spaces and digits, "worker 3"). Regexes with a lazy name group did the same but
# backtracked: a malformed 16 kB row took 5 s.
_TOKEN = re.compile(r"\S+")
_ADDR = re.compile(r"0x[0-9a-fA-F]+|0")


class _Block:
    """One heap's lines while they are being read."""

    def __init__(self) -> None:
        self.heap_id = False
        self.name: Optional[str] = None
        self.capacity: Optional[int] = None
        self.totals: Dict[str, int] = {}
        self.clients: List[IonClient] = []
        self.buffers: List[IonBuffer] = []
        self.heap_column = False  # X5 client rows start with the heap name
        self.user_pid = False  # Android "client pid user user_pid size mcnt rcnt"
        self.in_buffers = False
        self.orphans_only = False
        self.columns: Optional[List[str]] = None  # J6 per-buffer table, by its header

    def has_content(self) -> bool:
        return bool(self.name is not None or self.capacity is not None or self.totals
                    or self.clients or self.buffers)


def parse_heap_file(text: str, name: str, skips: Optional[Skips] = None) -> IonHeap:
    """One ``heaps/<name>`` file -> its heap (``name`` is used when the file has none)."""
    blocks = _blocks(text, skips)
    if len(blocks) != 1:
        raise ParseError("ion heap %s: %d heap sections, expected 1" % (name, len(blocks)))
    return _finish(blocks[0], blocks[0].name or name)


def parse_all_heap_info(text: str, skips: Optional[Skips] = None) -> List[IonHeap]:
    """``heaps/all_heap_info`` (every heap's block concatenated) -> heaps.

    A section without a name line (the file was cut inside its first lines) is dropped.
    """
    heaps = []
    for block in _blocks(text, skips):
        if block.name is not None and _usable(block):
            heaps.append(_finish(block, block.name))
    if not heaps:
        raise ParseError("ion all_heap_info: no heaps")
    return heaps


def _usable(block: _Block) -> bool:
    return bool(block.capacity is not None or block.totals or block.clients or block.buffers)


def _finish(block: _Block, name: str) -> IonHeap:
    if not _usable(block):
        raise ParseError("ion heap %s: no line of a known layout" % name)
    used = block.totals.get("total")
    orphaned = block.totals.get("total orphaned")
    if block.columns is not None and used is None:
        # The J6 table lists every buffer: without a total line its rows are the figures.
        used = sum(b.size for b in block.buffers)
        orphaned = sum(b.size for b in block.buffers if b.orphaned)
    return IonHeap(name, block.capacity, used, orphaned, block.totals.get("deferred free"),
                   block.clients, block.buffers)


def _blocks(text: str, skips: Optional[Skips]) -> List[_Block]:
    blocks: List[_Block] = []
    cur = _Block()
    # A client name may hold a line break (an app names its thread "total 9\n"): the
    # piece before it must not pass for a heap's total or a new heap. The kernel prints
    # "the heap id is N" first or after a dashes line, and "total" and "deferred free"
    # right after "total orphaned" (task names are too short to spell that one);
    # elsewhere such a line is a broken row, skipped and counted.
    prev = "rule"
    for raw in complete_lines(text):
        line = raw.strip()
        if not line:
            continue
        if _DASHES.match(line):
            prev = "rule"
            continue
        total = _TOTAL.match(line)
        if (_HEAP_ID.match(line) and prev != "rule") or (
                total and total.group(1) != "total orphaned" and prev != "total"):
            skip(skips, line, "ion")
            prev = "row"
            continue
        prev = "total" if total else "row"
        if _HEAP_ID.match(line):
            if cur.heap_id or cur.has_content():
                blocks.append(cur)
                cur = _Block()
            cur.heap_id = True
            continue
        cap = _CAPACITY.match(line)
        kernel = _KERNEL_HEAP.match(line)
        if cap or kernel:
            # A name line opens a new heap unless only a heap-id line came before it.
            if cur.has_content():
                blocks.append(cur)
                cur = _Block()
            if cap:
                cur.name, cur.capacity = cap.group(1) or cur.name, int(cap.group(2))
            elif kernel:
                cur.name = kernel.group(1)
            continue
        if total:
            cur.totals[total.group(1)] = int(total.group(2))
        elif "total" not in cur.totals:
            try:
                _row(cur, line)
            except ParseError:
                skip(skips, line, "ion")
        # else: heap-specific debug_show text (page pools, ...) after the totals
    if cur.heap_id or cur.has_content():
        blocks.append(cur)
    return blocks


def _row(cur: _Block, line: str) -> None:
    words = line.split()
    if line.endswith("allocations (info is from last known client):"):
        cur.in_buffers = True
        cur.orphans_only = line.startswith("orphaned")
    elif all(w in _HEADER_WORDS for w in words):
        if words[:2] == ["heap", "name"]:
            cur.heap_column = True
        if "user_pid" in words:
            cur.user_pid = True
    elif _is_table_header(words):
        cur.columns = words
    elif cur.columns is not None:
        _table_row(cur, cur.columns, line)
    elif cur.in_buffers:
        cur.buffers.append(_buffer(cur, line))
    else:
        m = _tail(line, 2)
        if not m or not (m[1][0].isdecimal() and m[1][1].isdecimal()):
            raise ParseError("ion: bad client row %r" % line[:80])
        name, (pid, size) = m
        if cur.heap_column or cur.name is not None:
            # Drop the X5 heap-name column. S100 rows have none (``comm pid size``, real
            # capture in tests/samples/horizon), so only a first word naming the heap goes.
            parts = name.split(None, 1)
            if parts and (parts[0] == cur.name or (cur.heap_column and cur.name is None)):
                name = parts[1] if len(parts) == 2 else ""
        cur.clients.append(IonClient(name.strip(), int(pid), int(size)))


def _buffer(cur: _Block, line: str) -> IonBuffer:
    if cur.orphans_only:
        # name pid [user_name user_pid] size refcount refcount
        m = _tail(line, 4)
        if m and (m[1][0].isdecimal() and m[1][1].isdecimal()
                  and _is_int(m[1][2]) and _is_int(m[1][3])):
            head, (last, size, _, _) = m
            if not cur.user_pid:
                return IonBuffer(head, int(last), int(size), "", True)
            first = _first_decimal(head)
            if first:
                return IonBuffer(head[:first.start()].rstrip(), int(first.group()),
                                 int(size), "", True)
        raise ParseError("ion: bad orphaned buffer row %r" % line[:80])
    orphaned = line.endswith(" orphaned")
    if orphaned:
        line = line[:-len(" orphaned")].rstrip()
    # X3: name pid heap 0xaddr size refcount; X5: name pid heap size refcount
    x3 = _tail(line, 5)
    if x3 and (x3[1][0].isdecimal() and _ADDR.fullmatch(x3[1][2])
               and x3[1][3].isdecimal() and _is_int(x3[1][4])):
        name, (pid, heap, _, size, _) = x3
        return IonBuffer(name, int(pid), int(size), heap, orphaned)
    x5 = _tail(line, 4)
    if x5 and x5[1][0].isdecimal() and x5[1][2].isdecimal() and _is_int(x5[1][3]):
        name, (pid, heap, size, _) = x5
        return IonBuffer(name, int(pid), int(size), heap, orphaned)
    raise ParseError("ion: bad buffer row %r" % line[:80])


def _is_table_header(words: List[str]) -> bool:
    """A header naming the client, pid and size columns (the J6 per-buffer table)."""
    return (all(_COLUMN_WORD.match(w) for w in words) and "pid" in words and "size" in words
            and ("client" in words or "name" in words))


_COUNT_COLUMNS = ("tgid", "kmap_cnt")


def _table_row(cur: _Block, columns: List[str], line: str) -> None:
    """A row of a header-read table: the name up to the pid, then the columns in order.

    Columns the header names but this code does not use are ignored, as are tokens past
    the last named column; a trailing ``orphaned`` marks a buffer no client holds.
    """
    tokens = line.split()
    orphaned = bool(tokens) and tokens[-1] == "orphaned"
    if orphaned:
        tokens = tokens[:-1]
    first = next((i for i, t in enumerate(tokens) if i > 0 and t.isdecimal()), None)
    if first is None:
        raise ParseError("ion: no pid in row %r" % line[:80])
    values = dict(zip(columns[1:], tokens[first:]))
    size, usage = values.get("size", ""), values.get("type", "")
    # Counts before the (possibly blank) label column are numbers: a name holding a
    # number and a line break ("total 9\r...") would otherwise shift every column.
    if not size.isdecimal() or usage.isdecimal() or not all(
            _is_int(values[c]) for c in _COUNT_COLUMNS if c in values):
        raise ParseError("ion: bad table row %r" % line[:80])
    name, pid = " ".join(tokens[:first]), int(tokens[first])
    cur.buffers.append(IonBuffer(name, pid, int(size), usage, orphaned))
    if not orphaned:
        cur.clients.append(IonClient(name, pid, int(size)))


def _tail(line: str, k: int) -> Optional[Tuple[str, List[str]]]:
    """The text before the last ``k`` tokens of ``line``, and those tokens."""
    parts = line.rsplit(None, k)
    if len(parts) == k:
        return "", parts
    if len(parts) == k + 1:
        return parts[0], parts[1:]
    return None


def _first_decimal(text: str) -> Optional["re.Match[str]"]:
    return next((t for t in _TOKEN.finditer(text) if t.group().isdecimal()), None)


def _is_int(token: str) -> bool:
    return (token[1:] if token.startswith("-") else token).isdecimal()
