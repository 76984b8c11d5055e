"""Load for agent soak runs: StatsD datagrams from another process, sysroot files that change.

:class:`StatsdLoad` paces datagrams at a fixed rate from a spawned process (so the
sender does not compete with the scraper for the GIL): timings for a few stable models,
multi-line datagrams, malformed lines, new model names past the cardinality cap and
model-load events. :class:`FileChurn` rewrites a sysroot's counters, temperatures,
memory figures and vendor tables (MMZ, ION, DMA-BUF, AXI, KGSL) every ``period``
seconds, alternately by atomic rename and in place (truncate, then write), so the
agent also reads files mid-rewrite; and appends to an app log it rotates now and then.
"""

import contextlib
import multiprocessing
import os
import random
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

STABLE_MODELS = ("yolov8", "resnet50", "mobilenet_v2", "bert-tiny", "whisper.enc", "ppocr/det")
BACKENDS = ("bpu", "cpu")
# A PID present in several fixtures (x5, generic): load events read its accelerator memory.
LOAD_PID = 1234


def datagram(n: int, rng: random.Random) -> Tuple[bytes, int]:
    """The ``n``-th datagram of the mix and how many stable-model timings it holds."""
    kind = n % 100
    if kind == 0:
        return b"garbage|x\nyolov8:-1|ms", 0
    if kind == 1:
        tags = b"#model:yolov8,stage:warm,pid:%d" % LOAD_PID
        return b"model_load_begin:1|c|" + tags + b"\nmodel_load:850|ms|" + tags, 0
    if kind < 6:  # new models: the agent's 50-model cap is reached within a second or two
        return b"churn%d:1.5|ms|#backend:cpu" % n, 0
    lines = 3 if kind < 15 else 1
    out = [b"%s:%.3f|ms|#backend:%s" % (STABLE_MODELS[(n + i) % len(STABLE_MODELS)].encode(),
                                        rng.uniform(0.5, 80.0), BACKENDS[(n + i) % 2].encode())
           for i in range(lines)]
    return b"\n".join(out), lines


def _send(port: int, rate: float, stop, sent) -> None:  # type: ignore[no-untyped-def]
    """Child process: send ``rate`` datagrams/s until ``stop`` is set.

    ``sent`` (a shared integer) counts the stable-model timings handed to the kernel.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rng = random.Random(port)
    start = time.perf_counter()
    n = timings = 0
    while not stop.is_set():
        due = int((time.perf_counter() - start) * rate)
        while n < due:
            data, k = datagram(n, rng)
            with contextlib.suppress(OSError):  # ENOBUFS: dropped before the agent
                sock.sendto(data, ("127.0.0.1", port))
                timings += k
            n += 1
        sent.value = timings
        time.sleep(0.002)
    sock.close()


class StatsdLoad:
    """Datagrams at ``rate``/s to ``127.0.0.1:port`` from a spawned process."""

    def __init__(self, port: int, rate: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._sent = ctx.Value("q", 0, lock=False)
        self._proc = ctx.Process(target=_send, args=(port, rate, self._stop, self._sent),
                                 name="statsd-load", daemon=True)

    @property
    def sent(self) -> int:
        """Stable-model timings sent so far."""
        return int(self._sent.value)

    def start(self) -> None:
        self._proc.start()

    def stop(self) -> None:
        """Stop sending (idempotent; a no-op if never started)."""
        self._stop.set()
        if self._proc.pid is None:
            return
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


@dataclass(frozen=True)
class Rule:
    """How a file changes: every number inside group 1 of ``pattern`` is rewritten.

    ``scale``: 0.5 to 1.0 times the original (stays within what the file allowed);
    ``count``: the original plus a per-number step times the tick (monotonic counters);
    ``sum``: the sum of group 1 over matches of ``of`` (a total kept consistent);
    ``drop``: lines matching ``pattern`` are left out at random (entries come and go).
    """

    glob: str  # relative to the sysroot
    pattern: str
    kind: str = "scale"
    of: str = ""


WHOLE = r"(?s)\A(.*)"
BUFINFO_SIZE = r"(?m)^(\d+)\t"
RULES = (
    Rule("proc/stat", r"(?m)^(?:cpu\d*|intr|ctxt|softirq) (.*)$", "count"),
    Rule("proc/meminfo", r"(?m)^(?:MemFree|MemAvailable|Buffers|Cached|CmaFree):(.*)$"),
    Rule("proc/loadavg", r"\A(\S+ \S+ \S+)"),
    Rule("sys/class/thermal/thermal_zone*/temp", WHOLE),
    Rule("sys/class/hwmon/hwmon*/temp*_input", WHOLE),
    Rule("sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq", WHOLE),
    Rule("sys/devices/system/bpu/ratio", WHOLE),
    Rule("sys/devices/system/bpu/bpu*/ratio", WHOLE),
    Rule("proc/media-mem", r"length=(\d+)KB"),
    Rule("proc/media-mem", r"\|-MMB:", "drop"),
    Rule("proc/umap/media-mem", r"length=(\d+)KB"),
    Rule("proc/umap/media-mem", r"\|-MMB:", "drop"),
    Rule("sys/kernel/debug/ion/heaps/*", r"(?m)\s\d+\s+(\d+)$"),
    Rule("sys/kernel/debug/dma_buf/bufinfo", BUFINFO_SIZE),
    Rule("sys/kernel/debug/dma_buf/bufinfo", r"Total \d+ objects, (\d+) bytes", "sum",
         BUFINFO_SIZE),
    Rule("sys/kernel/debug/axi_mon/statistics", r": (\d+) Bytes/sec"),
    Rule("sys/kernel/debug/axi_mon/statistics", r": (\d+)%"),
    Rule("sys/class/kgsl/kgsl/proc/*/*", WHOLE),
    Rule("sys/class/kgsl/kgsl-3d0/gpu_busy_percentage", WHOLE),
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
ROTATE = 25  # app log lines between rotations


def _number(old: str, value: float) -> str:
    """``value`` written like ``old``: same decimals, zero-padded to its width if it was."""
    decimals = len(old.partition(".")[2])
    text = "%.*f" % (decimals, value)
    return text.zfill(len(old)) if old.startswith("0") and len(old) > 1 else text


def render(text: str, rule: Rule, tick: int, rng: random.Random) -> str:
    """``text`` changed by ``rule`` for the ``tick``-th rewrite."""
    if rule.kind == "drop":
        return "".join(line for line in text.splitlines(keepends=True)
                       if not (re.search(rule.pattern, line) and rng.random() < 0.3))
    total = sum(int(m.group(1)) for m in re.finditer(rule.of, text)) if rule.of else 0
    index = 0

    def number(m: "re.Match[str]") -> str:
        nonlocal index
        index += 1
        old = float(m.group(0))
        if rule.kind == "sum":
            return str(total)
        new = old + tick * (1 + index % 50) if rule.kind == "count" else old * rng.uniform(0.5, 1)
        return _number(m.group(0), new)

    def span(m: "re.Match[str]") -> str:
        s, e = m.start(1) - m.start(0), m.end(1) - m.start(0)
        whole = m.group(0)
        return whole[:s] + _NUMBER.sub(number, whole[s:e]) + whole[e:]

    return re.sub(rule.pattern, span, text)


class FileChurn:
    """Rewrites every file of ``sysroot`` a rule covers, every ``period`` seconds.

    With ``app_log``, also appends an ``hrt_model_exec perf`` line to that file every
    period, and every :data:`ROTATE` periods rotates it, alternately by rename (``.1``)
    and by truncation (copytruncate), for the agent's log tail.
    """

    def __init__(self, sysroot: Path, period: float = 0.1, rules: Sequence[Rule] = RULES,
                 app_log: Path | None = None) -> None:
        self.period = period
        self.app_log = app_log
        self.files: Dict[Path, Tuple[str, List[Rule]]] = {}
        for rule in rules:
            for path in sorted(sysroot.glob(rule.glob)):
                if path.is_file():
                    self.files.setdefault(path, (path.read_text(), []))[1].append(rule)
        self.writes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="file-churn", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _loop(self) -> None:
        rng = random.Random(0)
        tick = 0
        while not self._stop.wait(self.period):
            tick += 1
            for path, (original, rules) in self.files.items():
                text = original
                for rule in rules:
                    text = render(text, rule, tick, rng)
                self._write(path, text, atomic=tick % 2 == 0)
                self.writes += 1
            if self.app_log is not None:
                self._log(self.app_log, tick)

    @staticmethod
    def _log(path: Path, tick: int) -> None:
        if tick % ROTATE == 0:
            if tick % (2 * ROTATE):
                os.replace(path, path.with_name(path.name + ".1"))
            else:
                os.truncate(path, 0)
        with open(path, "a") as f:
            f.write("Frame count: %d,  Thread Average: %.6f ms,  thread max latency: "
                    "%.6f ms,  FPS: %.6f\n" % (tick * 10, 0.7 + tick % 7 / 10, 2.5, 1400.0))

    @staticmethod
    def _write(path: Path, text: str, atomic: bool) -> None:
        if atomic:
            tmp = path.with_name(".%s.soak" % path.name)
            tmp.write_text(text)
            os.replace(tmp, path)
        else:
            with open(path, "w") as f:  # truncates: a reader may see it empty or partial
                f.write(text)
