"""Model-load events: load time, and the process's accelerator memory before vs after."""

import os
import subprocess
import sys
import threading
import time

from inference_io import send, statsd_agent, value, wait_for

from boardfleet_agent.collectors.dmabuf_process import DmaBufProcessCollector
from boardfleet_agent.collectors.ion import IonCollector
from boardfleet_agent.collectors.mmz import MmzCollector
from boardfleet_agent.inference.pipeline import Inference
from boardfleet_agent.outcome import run_collector
from boardfleet_agent.procs import PidMemory
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
        (root / ("proc/%d/comm" % PID)).write_text("infer\n")
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


class Recording(LocalSource):
    """A LocalSource that notes every path read, listed or stat'ed, and on which thread."""

    def __init__(self, root):
        super().__init__(root)
        self.reads = []

    def read_text(self, path):
        self.reads.append((threading.current_thread().name, "read", path))
        return super().read_text(path)

    def glob(self, pattern):
        self.reads.append((threading.current_thread().name, "glob", pattern))
        return super().glob(pattern)

    def readlink(self, path):
        self.reads.append((threading.current_thread().name, "readlink", path))
        return super().readlink(path)


def memory_collectors(memory):
    out = [DmaBufProcessCollector({}), IonCollector({}), MmzCollector({})]
    for c in out:
        c.pid_memory = memory
    return out


def sample(collectors, src):
    for c in collectors:
        outcome = run_collector(c, src)
        assert outcome.success and not outcome.absent, (c.name, outcome.error)


def test_collectors_publish_what_each_pid_holds(tmp_path):
    b = Board(tmp_path)
    src = LocalSource(str(tmp_path))
    b.dmabuf(3, 11, MIB)
    b.dmabuf(4, 11, MIB)  # same buffer through a second fd
    b.dmabuf(5, 12, 3 * MIB, exp_name="ion")  # an ION buffer: counted in ION rows
    b.ion_client(PID, 3 * MIB)
    b.ion_client(999, 5 * MIB)
    b.mmz_block(PID, 256)
    b.mmz_block(999, 1024)
    memory = PidMemory()
    assert memory.bytes_of(PID) is None  # nothing sampled yet: unknown, not zero
    dmabuf, ion, mmz = memory_collectors(memory)
    sample([dmabuf], src)
    assert memory.bytes_of(PID) == 4 * MIB  # without ION debugfs its dma-bufs count
    sample([ion, mmz], src)
    assert memory.bytes_of(PID) == MIB + 3 * MIB + 256 * 1024
    assert memory.bytes_of(999) == 5 * MIB + 1024 * 1024
    assert memory.bytes_of(31337) == 0  # sampled, holds nothing
    later = time.monotonic()
    assert memory.bytes_of(PID, since=later) is None  # not sampled since
    sample([dmabuf, ion], src)
    assert memory.bytes_of(PID, since=later) is None  # mmz still older
    sample([mmz], src)
    assert memory.bytes_of(PID, since=later) == MIB + 3 * MIB + 256 * 1024


def test_load_events_read_no_board_file(tmp_path):
    """Issue 13: model_load_begin re-read media-mem (MMZ allocator lock) on the StatsD
    thread. Now events only look up the collectors' samples; the increase is resolved
    when a sample taken after the end event comes in."""
    b = Board(tmp_path)
    src = Recording(str(tmp_path))
    b.dmabuf(3, 11, MIB)
    b.ion_client(PID, 2 * MIB)
    b.mmz_block(PID, 256)
    inference = Inference({"statsd": {"listen": "off"}}, src)
    collectors = memory_collectors(inference.memory)
    sample(collectors, src)
    tags = b"#model:yolov8,stage:first,pid:%d" % PID
    del src.reads[:]
    inference.handle(b"model_load_begin:1|c|" + tags)
    b.dmabuf(4, 12, 4 * MIB)
    b.ion_client(PID, 8 * MIB)
    b.mmz_block(PID, 1024)
    inference.handle(b"model_load:850|ms|" + tags)
    assert src.reads == []  # no read, listing or link of a board file on events
    metrics = {f.name: f for f in inference.collect()}
    assert metrics["board_model_load_seconds"].samples[0].value == 0.85
    assert "board_model_memory_increase_bytes" not in metrics  # no sample since the end
    sample(collectors[:2], src)
    assert "board_model_memory_increase_bytes" not in {f.name for f in inference.collect()}
    sample(collectors[2:], src)
    fam = {f.name: f for f in inference.collect()}["board_model_memory_increase_bytes"]
    assert [(s.labels, s.value) for s in fam.samples] == [
        ({"model": "yolov8", "stage": "first"}, 4 * MIB + 8 * MIB + MIB)]
    # A pid that is no process of this board: its memory is unknown, no increase.
    inference.handle(b"model_load_begin:1|c|#model:m2,stage:first,pid:31337\n"
                     b"model_load:10|ms|#model:m2,stage:first,pid:31337")
    sample(collectors, src)
    fam = {f.name: f for f in inference.collect()}["board_model_memory_increase_bytes"]
    assert [s.labels["model"] for s in fam.samples] == ["yolov8"]


def test_load_events_give_time_and_memory_increase(tmp_path):
    board = Board(tmp_path / "root")
    board.dmabuf(3, 11, MIB)
    board.ion_client(PID, 2 * MIB)
    board.mmz_block(PID, 256)
    tags = b"#model:yolov8,stage:first,pid:%d" % PID
    config = "".join("[collectors.%s]\nenabled = true\ninterval = 0.2\n" % c
                     for c in ("dmabuf_process", "ion", "mmz"))
    with statsd_agent(tmp_path, config, sysroot=str(board.root)) as (base, udp):
        # Model loads use the collectors' samples: wait for the first ones.
        wait_for(base, lambda s: all(value(s, "board_collector_success", collector=c) == 1
                                     for c in ("dmabuf_process", "ion", "mmz")))
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
        # The increase comes with the first samples taken after the end event.
        s = wait_for(base, lambda s: value(s, "board_model_memory_increase_bytes",
                                           model="yolov8", stage="first") != 0)
        assert value(s, "board_model_load_seconds", model="yolov8", stage="warm") == 0.12
        assert value(s, "board_model_load_seconds", model="yolov8", stage="first") == 0.85
        assert value(s, "board_model_memory_increase_bytes", model="yolov8",
                     stage="first") == 4 * MIB + 8 * MIB + MIB
        assert ("board_model_memory_increase_bytes",
                frozenset({("model", "yolov8"), ("stage", "warm")})) not in s
        assert value(s, "board_inference_rejected_total", reason="bad_label") == 2
        assert not any(k[0].startswith("board_inference_latency") and
                       ("model", "model_load") in k[1] for k in s)


def test_app_helper_model_load(tmp_path):
    app = ("import time\nfrom boardfleet_agent.inference.report import model_load\n"
           "with model_load('resnet', 'warm'):\n    time.sleep(0.05)\n")
    with statsd_agent(tmp_path) as (base, udp):
        env = dict(os.environ, BOARDFLEET_STATSD="%s:%d" % udp)
        subprocess.run([sys.executable, "-c", app], env=env, check=True, timeout=30)
        s = wait_for(base, lambda s: value(s, "board_model_load_seconds",
                                           model="resnet", stage="warm") > 0)
        assert 0.05 <= value(s, "board_model_load_seconds", model="resnet", stage="warm") < 5
        # The app's pid is not in the fixture sysroot: no memory reading, no increase.
        assert not any(k[0] == "board_model_memory_increase_bytes" for k in s)
