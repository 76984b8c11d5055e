"""Model-load events: load time, and the process's accelerator memory before vs after."""

import os
import subprocess
import sys

from inference_io import send, statsd_agent, value, wait_for

from boardfleet_agent.procmem import accelerator_bytes, dmabuf_bytes, ion_bytes, mmz_bytes
from boardfleet_agent.source import LocalSource

PID = 4242
MIB = 1 << 20
ION = """\
-------------------------------------------------------------------------
         ion_cma  heap total size        268435456
-------------------------------------------------------------------------
       heap name           client              pid             size
-------------------------------------------------------------------------
%s-------------------------------------------------------------------------
  total orphaned                0
          total           %d
-------------------------------------------------------------------------
"""
MMB = ('   |-MMB: phys(0x%08X, 0x%08X), kvirt=0x0000000000000000, flags=0x0, kernel_only=0, '
       'share_all=0 pid[%s,0,0,0,0], length=%dKB,    name="nnn_model"\n')


class Board:
    """A sysroot whose process PID holds dma-bufs, ION client bytes and MMZ blocks."""

    def __init__(self, root):
        self.root = root
        for d in ("proc/%d/fd" % PID, "proc/%d/fdinfo" % PID, "sys/kernel/debug/ion/heaps"):
            (root / d).mkdir(parents=True)
        self.ion = []
        self.mmz = []

    def dmabuf(self, fd, ino, size, exp_name="system"):
        os.symlink("/dmabuf:", str(self.root / ("proc/%d/fd/%d" % (PID, fd))))
        (self.root / ("proc/%d/fdinfo/%d" % (PID, fd))).write_text(
            "pos:\t0\nflags:\t02000002\nmnt_id:\t9\nino:\t%d\nsize:\t%d\ncount:\t1\n"
            "exp_name:\t%s\n" % (ino, size, exp_name))

    def ion_client(self, pid, size):
        self.ion.append("         ion_cma          infer          %7d  %15d\n" % (pid, size))
        total = sum(int(r.split()[-1]) for r in self.ion)
        (self.root / "sys/kernel/debug/ion/heaps/ion_cma").write_text(
            ION % ("".join(self.ion), total))

    def mmz_block(self, pid, kb):
        start = 0x90000000 + sum(k for k in self.mmz) * 1024
        self.mmz.append(kb)
        line = MMB % (start, start + kb * 1024 - 1, pid, kb)
        path = self.root / "proc/media-mem"
        head = path.read_text().split("\n---MMZ")[0] if path.exists() else (
            '+---ZONE: PHYS(0x90000000, 0x9FFFFFFF), GFP=0, nBYTES=262144KB,    '
            'NAME="anonymous"\n')
        used = sum(self.mmz)
        path.write_text(head.rstrip("\n") + "\n" + line + "\n---MMZ_USE_INFO:\n total size="
                        "262144KB(256MB),used=%dKB(0MB + %dKB),remain=%dKB(0MB + 0KB),"
                        "zone_number=1,block_number=%d\n"
                        % (used, used, 262144 - used, len(self.mmz)))


def test_process_memory_readers(tmp_path):
    b = Board(tmp_path)
    src = LocalSource(str(tmp_path))
    b.dmabuf(3, 11, MIB)
    b.dmabuf(4, 11, MIB)  # same buffer through a second fd
    b.dmabuf(5, 12, 3 * MIB, exp_name="ion")  # an ION buffer: counted in ION rows
    b.ion_client(PID, 3 * MIB)
    b.ion_client(999, 5 * MIB)
    b.mmz_block(PID, 256)
    b.mmz_block(999, 1024)
    assert dmabuf_bytes(src, PID) == 4 * MIB
    assert dmabuf_bytes(src, PID, skip_ion=True) == MIB
    assert ion_bytes(src, PID) == 3 * MIB
    assert mmz_bytes(src, PID) == 256 * 1024
    assert accelerator_bytes(src, PID) == MIB + 3 * MIB + 256 * 1024
    assert accelerator_bytes(src, 31337) is None  # no such process
    (tmp_path / "proc/31337").mkdir()
    assert accelerator_bytes(src, 31337) == 0  # ION and MMZ readable, nothing held
    assert accelerator_bytes(LocalSource(str(tmp_path / "empty")), PID) is None


def test_load_events_give_time_and_memory_increase(tmp_path):
    board = Board(tmp_path / "root")
    board.dmabuf(3, 11, MIB)
    board.ion_client(PID, 2 * MIB)
    board.mmz_block(PID, 256)
    tags = b"#model:yolov8,stage:first,pid:%d" % PID
    with statsd_agent(tmp_path, sysroot=str(board.root)) as (base, udp):
        # The sync timing after the begin event shows when the agent has handled it.
        send(udp, b"model_load_begin:1|c|" + tags + b"\nsync:1|ms")
        wait_for(base, lambda s: value(s, "board_inference_latency_seconds_count",
                                       model="sync", backend="") == 1)
        board.dmabuf(4, 12, 4 * MIB)
        board.dmabuf(5, 12, 4 * MIB)
        board.ion_client(PID, 8 * MIB)
        board.ion_client(77, 64 * MIB)
        board.mmz_block(PID, 1024)
        send(udp, b"model_load:850|ms|" + tags,
             b"model_load:120|ms|#model:yolov8,stage:warm",
             b"model_load:5|ms|#model:yolov8,stage:cold,pid:1",
             b"model_load_begin:1|c|#model:yolov8,stage:first,pid:-3")
        s = wait_for(base, lambda s: value(s, "board_model_load_seconds",
                                           model="yolov8", stage="warm") == 0.12)
        assert value(s, "board_model_load_seconds", model="yolov8", stage="first") == 0.85
        assert value(s, "board_model_memory_increase_bytes", model="yolov8",
                     stage="first") == 4 * MIB + 8 * MIB + MIB
        assert ("board_model_memory_increase_bytes",
                frozenset({("model", "yolov8"), ("stage", "warm")})) not in s
        assert value(s, "board_inference_rejected_total", reason="bad_label") == 2
        assert not any(k[0].startswith("board_inference_latency") and
                       ("model", "model_load") in k[1] for k in s)


def test_app_helper_model_load(tmp_path):
    app = ("import time\nfrom boardfleet_agent.report import model_load\n"
           "with model_load('resnet', 'warm'):\n    time.sleep(0.05)\n")
    with statsd_agent(tmp_path) as (base, udp):
        env = dict(os.environ, BOARDFLEET_STATSD="%s:%d" % udp)
        subprocess.run([sys.executable, "-c", app], env=env, check=True, timeout=30)
        s = wait_for(base, lambda s: value(s, "board_model_load_seconds",
                                           model="resnet", stage="warm") > 0)
        assert 0.05 <= value(s, "board_model_load_seconds", model="resnet", stage="warm") < 5
        # The app's pid is not in the fixture sysroot: no memory reading, no increase.
        assert not any(k[0] == "board_model_memory_increase_bytes" for k in s)
