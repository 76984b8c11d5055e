"""Parsers for DMA-BUF text: debugfs ``bufinfo`` and ``/proc/<pid>/fdinfo/<fd>``.

Pure functions from text to records; on text they cannot read they raise
:class:`~boardfleet_agent.errors.ParseError` and nothing else. Parsing policy
(docs/metrics.md): in ``bufinfo`` a buffer line that cannot be read is skipped and
counted, and a last line cut short is dropped.

``bufinfo`` layouts (docs/formats/qualcomm.md §1b). Upstream 6.x prints each buffer as
``%08zu\\t%08x\\t%08x\\t%08ld\\t%s\\t%08lu\\t%s`` (size, flags, mode, count, exp_name,
ino, name), followed by indented fence lines, ``\\tAttached Devices:``, one indented line
per device and ``Total N devices attached``; the file ends with
``Total N objects, B bytes``. Kernels before ~5.10 lack ino and name, kernels before
~6.1 print an empty name instead of ``<none>``, and some captures have spaces instead of
tabs. No Qualcomm capture exists: the GKI Qualcomm layout is inferred from the upstream
format strings and from Apple (Asahi) and AMD captures, so the parser accepts every
variant above rather than fixed columns.
"""

import re
from typing import Dict, List, NamedTuple, Optional, Tuple

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.lines import Skips, complete_lines, skip

WHERE = "dma_buf/bufinfo"
_FOOTER = re.compile(r"Total\s+(\d+)\s+objects,\s+(\d+)\s+bytes$")
_DEVICES = re.compile(r"Total\s+(\d+)\s+devices\s+attached$")


class DmaBuf(NamedTuple):
    size: int
    refs: int  # file references: bufinfo's count (a field named count hides tuple.count)
    exp_name: str
    ino: Optional[int]  # None on kernels before ~5.10
    name: str  # "" when unnamed
    attached: List[str]  # device names from "Attached Devices:"


class BufInfo(NamedTuple):
    buffers: List[DmaBuf]
    footer_objects: Optional[int]  # from "Total N objects, B bytes", None if absent
    footer_bytes: Optional[int]


def parse_bufinfo(text: str, skips: Optional[Skips] = None) -> BufInfo:
    """``/sys/kernel/debug/dma_buf/bufinfo`` -> buffers and the footer totals.

    When the footer is present and no line was skipped, its totals must equal the parsed
    buffers: the kernel counts them in the same locked walk that prints the lines, so a
    difference means lines were misread, and the numbers cannot be trusted (ParseError).
    Text with lines but neither a buffer nor a footer that could be read is a ParseError.
    """
    buffers: List[DmaBuf] = []
    footer: Optional[Tuple[int, int]] = None
    in_devices = False
    skipped = 0
    lines = complete_lines(text)
    # The footer ends the file: a footer-like line before the last one is the rest of a
    # buffer name with a line break in it (names are app-chosen), skipped and counted.
    last = max((i for i, line in enumerate(lines) if _FOOTER.match(line.strip())),
               default=-1)
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped == "Dma-buf Objects:":
            continue
        if footer is not None or (i != last and _FOOTER.match(stripped)):
            skipped += 1
            skip(skips, line, WHERE)
            continue
        if line[0] in " \t" or stripped.startswith(("Exclusive fence", "Shared fence")):
            # Fence lines, "Attached Devices:" and the attached device names.
            if stripped == "Attached Devices:":
                in_devices = bool(buffers)
            elif in_devices:
                buffers[-1].attached.append(stripped)
            continue
        in_devices = False
        if stripped.split()[0] == "size":
            continue  # column header
        if _DEVICES.match(stripped):
            continue
        m = _FOOTER.match(stripped)
        if m:
            footer = (int(m.group(1)), int(m.group(2)))
            continue
        try:
            buffers.append(_buffer_line(line))
        except ParseError:
            skipped += 1
            skip(skips, line, WHERE)
    if footer is None:
        if skipped and not buffers:
            raise ParseError("%s: no buffer line could be read" % WHERE)
        return BufInfo(buffers, None, None)
    objects, total = footer
    got = sum(b.size for b in buffers)
    if not skipped and (objects != len(buffers) or total != got):
        raise ParseError("%s: footer says %d objects, %d bytes; parsed %d, %d"
                         % (WHERE, objects, total, len(buffers), got))
    return BufInfo(buffers, objects, total)


def _buffer_line(line: str) -> DmaBuf:
    fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
    if len(fields) < 5:
        raise ParseError("%s: bad buffer line %r" % (WHERE, line[:80]))
    size = _dec(fields[0])
    _hex(fields[1])  # flags
    _hex(fields[2])  # mode
    count = _dec(fields[3])
    exp_name = fields[4]
    if not exp_name:
        raise ParseError("%s: empty exp_name in %r" % (WHERE, line[:80]))
    ino = _dec(fields[5]) if len(fields) > 5 else None
    name = " ".join(fields[6:]).strip()
    if name == "<none>":
        name = ""
    return DmaBuf(size, count, exp_name, ino, name, [])


def _dec(raw: str) -> int:
    # Zero-padded decimals ("01064960") are base 10, not octal.
    if not raw.isdigit() or not raw.isascii():
        raise ParseError("%s: %r is not a decimal number" % (WHERE, raw[:40]))
    return int(raw, 10)


def _hex(raw: str) -> int:
    try:
        return int(raw, 16)
    except ValueError:
        raise ParseError("%s: %r is not a hex number" % (WHERE, raw[:40])) from None


class DmaBufFd(NamedTuple):
    size: int
    exp_name: str
    ino: Optional[int]  # the generic fdinfo "ino:" line; absent on old kernels
    refs: Optional[int]  # fdinfo's count: line


_FDINFO_KEYS = ("size", "count", "exp_name", "ino")


def parse_dmabuf_fdinfo(text: str) -> Optional[DmaBufFd]:
    """``/proc/<pid>/fdinfo/<fd>`` -> the dma-buf fields, or None if not a dma-buf fd.

    A dma-buf fd is recognised by its ``exp_name:`` line; other fds (epoll, inotify,
    sockets, ...) return None. Lines are ``key:\\tvalue`` or ``key: value``.
    """
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key in _FDINFO_KEYS and key not in fields:
            fields[key] = value.strip()
    if "exp_name" not in fields:
        return None
    where = "fdinfo"
    if "size" not in fields:
        raise ParseError("%s: dma-buf fd without a size: line" % where)
    if not fields["exp_name"]:
        raise ParseError("%s: empty exp_name" % where)
    size = _fd_int(fields["size"], where)
    ino = _fd_int(fields["ino"], where) if "ino" in fields else None
    count = _fd_int(fields["count"], where) if "count" in fields else None
    return DmaBufFd(size, fields["exp_name"], ino, count)


def _fd_int(raw: str, where: str) -> int:
    if not raw.isdigit() or not raw.isascii():
        raise ParseError("%s: %r is not a decimal number" % (where, raw[:40]))
    return int(raw, 10)
