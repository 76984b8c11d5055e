"""Parsers for /proc text files: stat, meminfo, loadavg, mounts and /proc/<pid>/stat.

Pure functions from text to records. On text they cannot read they raise
:class:`~boardfleet_agent.errors.ParseError` and nothing else.
"""

from typing import Dict, List, NamedTuple, Optional, Tuple

from boardfleet_agent.errors import ParseError

# /proc reports CPU time in USER_HZ ticks, which is 100 on every Linux architecture
# these boards use (arm, arm64, x86); it is not the kernel's internal HZ.
USER_HZ = 100.0

CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


class CpuStat(NamedTuple):
    per_cpu: Dict[str, Dict[str, float]]  # "0" -> {"user": seconds, ...}
    boot_time: Optional[float]


def parse_stat(text: str) -> CpuStat:
    """``/proc/stat`` -> CPU seconds per core and mode, and the boot time."""
    per_cpu: Dict[str, Dict[str, float]] = {}
    boot_time = None
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        key = fields[0]
        if key.startswith("cpu") and key != "cpu":
            cpu = key[3:]
            if not cpu.isdigit() or len(fields) < 5:
                raise ParseError("/proc/stat: bad cpu line %r" % line[:80])
            values = {}
            for mode, raw in zip(CPU_MODES, fields[1:]):
                values[mode] = _int(raw, "/proc/stat") / USER_HZ
            per_cpu[cpu] = values
        elif key == "btime" and len(fields) == 2:
            boot_time = float(_int(fields[1], "/proc/stat"))
    if not per_cpu:
        raise ParseError("/proc/stat: no per-cpu lines")
    return CpuStat(per_cpu, boot_time)


def parse_meminfo(text: str) -> Dict[str, int]:
    """``/proc/meminfo`` -> {field: bytes} (``kB`` values converted; counts kept)."""
    out: Dict[str, int] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts or len(parts) > 2:
            raise ParseError("/proc/meminfo: bad line %r" % line[:80])
        value = _int(parts[0], "/proc/meminfo")
        if len(parts) == 2:
            if parts[1] != "kB":
                raise ParseError("/proc/meminfo: unknown unit %r" % parts[1])
            value *= 1024
        out[name.strip()] = value
    if "MemTotal" not in out:
        raise ParseError("/proc/meminfo: no MemTotal")
    return out


def available_bytes(meminfo: Dict[str, int]) -> int:
    """MemAvailable, or its pre-3.14 estimate MemFree + Buffers + Cached."""
    if "MemAvailable" in meminfo:
        return meminfo["MemAvailable"]
    return sum(meminfo.get(k, 0) for k in ("MemFree", "Buffers", "Cached"))


def parse_loadavg(text: str) -> Tuple[float, float, float]:
    """``/proc/loadavg`` -> (load1, load5, load15)."""
    parts = text.split()
    if len(parts) < 3:
        raise ParseError("/proc/loadavg: expected 3 load values, got %r" % text[:80])
    try:
        return float(parts[0]), float(parts[1]), float(parts[2])
    except ValueError:
        raise ParseError("/proc/loadavg: bad number in %r" % text[:80]) from None


class Mount(NamedTuple):
    device: str
    mountpoint: str
    fstype: str


def parse_mounts(text: str) -> List[Mount]:
    """``/proc/mounts`` -> mounts (octal escapes such as ``\\040`` decoded)."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3:
            raise ParseError("/proc/mounts: bad line %r" % line[:80])
        out.append(Mount(_unescape(parts[0]), _unescape(parts[1]), parts[2]))
    return out


def _unescape(field: str) -> str:
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        chunk = field[i + 1:i + 4]
        if field[i] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


class PidStat(NamedTuple):
    comm: str
    cpu_seconds: float
    rss_pages: int
    start_ticks: int


def parse_pid_stat(text: str) -> PidStat:
    """``/proc/<pid>/stat`` -> comm, user+system CPU seconds, RSS pages, start time.

    The comm is between the first ``(`` and the last ``)`` and may hold spaces or
    parentheses itself.
    """
    open_at = text.find("(")
    close_at = text.rfind(")")
    if open_at < 0 or close_at < open_at:
        raise ParseError("/proc/<pid>/stat: no (comm)")
    comm = text[open_at + 1:close_at]
    rest = text[close_at + 1:].split()
    # rest[0] is field 3 (state); utime, stime are fields 14, 15; starttime 22; rss 24.
    if len(rest) < 22:
        raise ParseError("/proc/<pid>/stat: %d fields after comm, need 22" % len(rest))
    utime = _int(rest[11], "/proc/<pid>/stat")
    stime = _int(rest[12], "/proc/<pid>/stat")
    start = _int(rest[19], "/proc/<pid>/stat")
    rss = _int(rest[21], "/proc/<pid>/stat")
    return PidStat(comm, (utime + stime) / USER_HZ, max(rss, 0), start)


def _int(raw: str, where: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ParseError("%s: %r is not an integer" % (where, raw[:40])) from None
