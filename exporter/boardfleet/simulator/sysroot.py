"""Writes a simulated HiSilicon (Hi3516EV200-like) sysroot from a :class:`BoardState`.

Formats follow the real boards (samples in tests/samples/hisi/, e.g. the
Hi3516EV200 media-mem capture): the ``/proc/media-mem`` zone header, MMB lines and
``---MMZ_USE_INFO`` summary; a ``usr/bin/hiddrs`` that prints ``ddrc0[xx.xx%]`` lines
like the vendor tool; thermal zones in millidegrees. Every file is replaced atomically,
so an agent never reads half.
"""

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

from boardfleet.simulator.scenarios import BoardState

ZONE_BASE = 0x44000000
ZONE_KB = 65536
# Blocks every board holds (name, KB): the SDK's own allocations.
SYSTEM_BLOCKS = (("sys_scale_coef", 32), ("VGS_NodeBuf", 332), ("hifb_layer0", 1620),
                 ("IVE_QUEUE", 212), ("VbPool", 12288))
APP_BLOCK_KB = 512

STATIC_FILES = {
    "proc/version": "Linux version 4.9.37 (sim@boardfleet) (gcc version 6.3.0) #1 SMP\n",
    "proc/sys/kernel/osrelease": "4.9.37\n",
    "proc/device-tree/model": "Hisilicon Hi3516EV200 simulated board\0",
    "proc/device-tree/compatible": "hisilicon,hi3516ev200-demo\0hisilicon,hi3516ev200\0",
    "proc/mounts": "rootfs / rootfs rw 0 0\nproc /proc proc rw 0 0\n",
    "proc/meminfo": ("MemTotal:          38212 kB\nMemFree:            9120 kB\n"
                     "MemAvailable:      18000 kB\nBuffers:            1204 kB\n"
                     "Cached:             8340 kB\n"),
    "sys/class/thermal/thermal_zone0/type": "soc-thermal\n",
}


def blocks_for(used_ratio: float) -> List[Tuple[str, int]]:
    """System blocks plus 512 KB ``app_buf`` blocks up to ``used_ratio`` of the zone."""
    blocks = list(SYSTEM_BLOCKS)
    used = sum(kb for _, kb in blocks)
    target = min(used_ratio, 1.0) * ZONE_KB
    while used + APP_BLOCK_KB <= target:
        blocks.append(("app_buf", APP_BLOCK_KB))
        used += APP_BLOCK_KB
    return blocks


def media_mem(used_ratio: float) -> str:
    """``/proc/media-mem`` text for one ``anonymous`` zone, blocks packed from its start."""
    lines = ['+---ZONE: PHYS(0x%08X, 0x%08X), GFP=0, nBYTES=%dKB,    NAME="anonymous"'
             % (ZONE_BASE, ZONE_BASE + ZONE_KB * 1024 - 1, ZONE_KB)]
    addr = ZONE_BASE
    blocks = blocks_for(used_ratio)
    for name, kb in blocks:
        end = addr + kb * 1024 - 1
        lines.append('   |-MMB: phys(0x%08X, 0x%08X), kvirt=0x00000000, flags=0x00000000, '
                     'length=%dKB,    name="%s"' % (addr, end, kb, name))
        addr = end + 1
    used = sum(kb for _, kb in blocks)
    remain = ZONE_KB - used
    lines += ["", "---MMZ_USE_INFO:",
              " total size=%dKB(%dMB),used=%dKB(%dMB + %dKB),remain=%dKB(%dMB + %dKB),"
              "zone_number=1,block_number=%d" % (
                  ZONE_KB, ZONE_KB // 1024, used, used // 1024, used % 1024,
                  remain, remain // 1024, remain % 1024, len(blocks))]
    return "\n".join(lines) + "\n"


def hiddrs(ddr_ratio: float) -> str:
    """A ``hiddrs`` stand-in printing the banner, then the current utilisation (bounded)."""
    return ("#!/bin/sh\n"
            "# Simulated hiddrs (boardfleet simulate): prints the board's current DDR\n"
            "# utilisation like the vendor tool; arguments are ignored.\n"
            'echo "*** Board tools : ver0.0.1_20121120 ***"\n'
            'echo "[debug]: {source/utils/cmdshell.c:171}cmdstr:hiddrs"\n'
            'echo "===== ddr statistic ====="\n'
            "i=0\n"
            'while [ "$i" -lt 20 ]; do echo "ddrc0[%.2f%%]"; i=$((i+1)); sleep 0.05; done\n'
            % (ddr_ratio * 100))


@dataclass
class CpuTimes:
    """A board's ``/proc/stat`` jiffies since boot: they only ever grow (until a reboot)."""

    busy: float = 0.0
    idle: float = 0.0
    boot_time: int = 0

    def advance(self, state: BoardState, dt: float) -> None:
        """Add ``dt`` seconds at ``state``'s load; start from zero when it rebooted."""
        if state.boot_time != self.boot_time:
            self.busy = self.idle = 0.0
            self.boot_time = state.boot_time
        jiffies = max(0.0, dt) * 100
        busy = jiffies * min(1.0, 0.1 + state.ddr_ratio / 2)
        self.busy += busy
        self.idle += jiffies - busy


def write_sysroot(root: Path, state: BoardState, cpu: CpuTimes) -> None:
    """Bring the sysroot at ``root`` up to ``state`` with CPU times ``cpu``."""
    if not (root / "proc/version").exists():
        for rel, text in STATIC_FILES.items():
            _atomic(root / rel, text)
    busy, idle = int(cpu.busy), int(cpu.idle)
    _atomic(root / "proc/stat",
            "cpu  %d 0 %d %d 0 0 0 0 0 0\ncpu0 %d 0 %d %d 0 0 0 0 0 0\nbtime %d\n"
            % (busy, busy // 4, idle, busy, busy // 4, idle, state.boot_time))
    _atomic(root / "proc/loadavg", "%.2f %.2f %.2f 1/48 321\n" % ((state.ddr_ratio * 2,) * 3))
    _atomic(root / "proc/media-mem", media_mem(state.mmz_used_ratio))
    _atomic(root / "sys/class/thermal/thermal_zone0/temp",
            "%d\n" % round(state.temperature_c * 1000))
    _atomic(root / "usr/bin/hiddrs", hiddrs(state.ddr_ratio), mode=0o755)


def _atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sim-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
