"""Cost of one ``model_load_begin`` event on the StatsD thread (issue 13).

Before, each event re-read the loading process's accelerator memory: ``/proc/media-mem``
(under the MMZ allocator's lock on a board), ION debugfs and its fds. Now it looks up
what the background collectors last sampled. Both are timed in the same run on a
sysroot whose ``media-mem`` holds about ``--mb`` MB of blocks owned by seven PIDs: the
peer is the read-and-parse of ``media-mem`` that each event used to do. Not part of the
test suite::

    python3 benchmarks/modelload_event.py [--mb 3]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "agent"))

from boardfleet_agent.collectors.mmz import MmzCollector  # noqa: E402
from boardfleet_agent.inference.pipeline import Inference  # noqa: E402
from boardfleet_agent.outcome import run_collector  # noqa: E402
from boardfleet_agent.parsers.mmz import parse_media_mem  # noqa: E402
from boardfleet_agent.source import LocalSource  # noqa: E402

MMB = ("   |-MMB: phys(0x%08X, 0x%08X), kvirt=0x0000000000000000, flags=0x0, kernel_only=0, "
       "share_all=0 pid[%d,0,0,0,0], length=4KB,    name=\"nnn_model%d\"\n")
PID = 4242


def board(root: Path, mb: float) -> int:
    """A sysroot with a media-mem of about ``mb`` MB; returns its block count."""
    (root / ("proc/%d" % PID)).mkdir(parents=True)
    lines = ['+---ZONE: PHYS(0x90000000, 0xCFFFFFFF), GFP=0, nBYTES=1048576KB,    '
             'NAME="anonymous"\n']
    size = n = 0
    while size < mb * 2**20:
        start = 0x90000000 + n * 4096
        lines.append(MMB % (start, start + 4095, PID + n % 7, n % 40))
        size += len(lines[-1])
        n += 1
    lines.append("\n---MMZ_USE_INFO:\n total size=1048576KB(1024MB),used=%dKB(0MB + 0KB),"
                 "remain=%dKB(0MB + 0KB),zone_number=1,block_number=%d\n"
                 % (n * 4, 1048576 - n * 4, n))
    (root / "proc/media-mem").write_text("".join(lines))
    return n


def per_call(f: Callable[[], object], seconds: float = 2.0) -> float:
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        f()
        calls += 1
    return (time.perf_counter() - start) / calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=3.0, help="media-mem size (default 3)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="modelload-bench-"))
    blocks = board(root, args.mb)
    src = LocalSource(str(root))
    inference = Inference({"statsd": {"listen": "off"}}, src)
    mmz = MmzCollector({})
    mmz.pid_memory = inference.memory
    assert run_collector(mmz, src).success
    event = b"model_load_begin:1|c|#model:m,stage:first,pid:%d" % PID
    now = per_call(lambda: inference.handle(event))
    before = per_call(lambda: parse_media_mem(src.read_text("/proc/media-mem")))
    print("media-mem %.1f MB, %d blocks" % (os.path.getsize(root / "proc/media-mem") / 2**20,
                                           blocks))
    print("| per begin event | seconds |")
    print("|---|---|")
    print("| read + parse media-mem (before) | %.4f |" % before)
    print("| cached lookup (now) | %.7f |" % now)
    print("ratio: %.0fx" % (before / now))


if __name__ == "__main__":
    main()
