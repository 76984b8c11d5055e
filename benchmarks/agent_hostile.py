"""The agent soak with hostile inputs mixed in (issue 13): contained, visible, recovered.

Runs the soak harness of benchmarks/agent_soak.py (scrapes over one kept-alive
connection, StatsD load, a tailed app log) and, in rounds, attacks the agent the way the
issue found it breakable:

- ``/proc/loadavg`` replaced by a FIFO nobody writes, then restored;
- ``/proc/media-mem`` grown past the 4 MB read cap, then restored (hi3516ev200);
- ``/proc/device-tree/model`` pointed out of the sysroot, then restored;
- 60 slowloris connections from 127.0.0.2 (request heads that never end), then closed;
- 100 wrong passwords are not tried (no web config here); instead StatsD lines with
  ``@1e-300`` rates and one model's 1000 tag values;
- 20 SIGHUPs in a row.

Checks that every scrape of the harness (from 127.0.0.1) was answered completely, that
``loadavg`` and ``mmz`` were served as failed while attacked and recovered afterwards,
that every count stayed finite, and that fds and threads at the end equal those before
the first attack::

    python3 benchmarks/agent_hostile.py [--duration 120] [--board hi3516ev200]
"""

import argparse
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.paths import BOARDS
from support.soak import Soak, SoakResult, Steady, collector_outcomes

ROUND = 20.0  # seconds per attack round: attacked for the first half, healed after
CALM = 10.0  # seconds of the run before the first attack: the reference figures


class Hostile:
    """Attack rounds against a running :class:`Soak`, recording what the agent served."""

    def __init__(self, soak: Soak, res_box: List[SoakResult]) -> None:
        self.soak = soak
        self.res_box = res_box
        self.sysroot = soak.sysroot
        self.stop = threading.Event()
        self.notes: List[str] = []
        self.attacked: Dict[str, List[bool]] = {"loadavg": [], "mmz": []}
        self.healed: Dict[str, List[bool]] = {"loadavg": [], "mmz": []}
        self.rounds = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _outcomes(self) -> Dict[str, bool]:
        body = self.res_box[0].last_body if self.res_box else ""
        return collector_outcomes(body)

    def _swap(self, rel: str, make) -> Path:  # type: ignore[no-untyped-def]
        path = self.sysroot / rel
        keep = path.with_name(path.name + ".keep")
        if path.exists() or path.is_symlink():
            os.replace(path, keep)
        make(path)
        return keep

    @staticmethod
    def _restore(rel_path: Path, keep: Path) -> None:
        if rel_path.exists() or rel_path.is_symlink():
            rel_path.unlink()
        if keep.exists() or keep.is_symlink():
            os.replace(keep, rel_path)

    def _statsd_abuse(self) -> None:
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(1000):
            tx.sendto(b"abuse:1|ms|@1e-300\nflood:1|ms|#backend:b%d" % i,
                      ("127.0.0.1", self.soak.udp_port))
        tx.close()

    def _slowloris(self) -> List[socket.socket]:
        held = []
        for _ in range(60):
            try:
                s = socket.create_connection(("127.0.0.1", self.soak.port), timeout=5,
                                             source_address=("127.0.0.2", 0))
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
            except OSError as e:
                self.notes.append("slowloris connect: %s" % e)
                break
        return held

    def _loop(self) -> None:
        assert self.soak.proc is not None
        while not self.stop.is_set():
            self.rounds += 1
            loadavg = self.sysroot / "proc" / "loadavg"
            keep_load = self._swap("proc/loadavg", lambda p: os.mkfifo(str(p)))
            media = self.sysroot / "proc" / "media-mem"
            keep_media = None
            if media.exists():
                keep_media = self._swap("proc/media-mem", lambda p: shutil.copyfile(
                    str(p.with_name("media-mem.keep")), str(p)))
                with media.open("a") as f:
                    f.write("   |-MMB: junk\n" * 400000)  # about 6 MB: past the cap
            dt = self.sysroot / "proc" / "device-tree" / "model"
            keep_dt = None
            if dt.exists():
                keep_dt = self._swap("proc/device-tree/model",
                                     lambda p: os.symlink("/etc/hostname", str(p)))
            held = self._slowloris()
            self._statsd_abuse()
            for _ in range(20):
                self.soak.proc.send_signal(signal.SIGHUP)
            stopped = self.stop.wait(ROUND / 2)
            outcomes = self._outcomes()
            for name in self.attacked:
                if name in outcomes and not stopped:  # a cut-short round proves nothing
                    self.attacked[name].append(outcomes[name])
            for s in held:
                s.close()
            self._restore(loadavg, keep_load)
            if keep_media is not None:
                self._restore(media, keep_media)
            if keep_dt is not None:
                self._restore(dt, keep_dt)
            if self.stop.wait(ROUND / 2):
                break
            outcomes = self._outcomes()
            for name in self.healed:
                if name in outcomes:
                    self.healed[name].append(outcomes[name])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=120.0, help="seconds (default 120)")
    ap.add_argument("--board", default="hi3516ev200", choices=BOARDS)
    ap.add_argument("--rate", type=float, default=10.0, help="scrapes per second")
    ap.add_argument("--statsd-rate", type=float, default=1000.0)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="bf-hostile-") as tmp, Soak(
            Path(tmp), args.board, args.statsd_rate, 3600.0, 0.5) as soak:
        box: List[SoakResult] = []
        hostile = Hostile(soak, box)
        started = time.monotonic()

        def progress(res: SoakResult) -> None:
            if not box and res.samples and res.samples[-1].t >= CALM:
                box.append(res)
                hostile.thread.start()

        res = soak.run(duration=args.duration, rate=args.rate, progress_every=0.5,
                       progress=progress)
        hostile.stop.set()
        hostile.thread.join(ROUND)
        took = time.monotonic() - started
    before = Steady.of(res.window(2.0, CALM))
    after = Steady.of(res.window(res.samples[-1].t - 2, res.samples[-1].t + 1))
    finite = all(math.isfinite(float(line.rsplit(" ", 1)[1]))
                 for line in res.last_body.splitlines()
                 if line.startswith("board_inference_latency_seconds"))
    print("board %s, %.0f s, %d attack rounds of %.0f s" % (args.board, took, hostile.rounds,
                                                          ROUND))
    print("scrapes: %d, bad or missing answers: %d%s" % (
        res.scrapes, len(res.errors), (" (first: %s)" % res.errors[0]) if res.errors else ""))
    for name in ("loadavg", "mmz"):
        print("%-8s success while attacked %s, after healing %s" % (
            name, hostile.attacked[name], hostile.healed[name]))
    print("before the first attack: RSS %.0f KiB, fds %d, threads %d; at the end: RSS %.0f "
          "KiB, fds %d, threads %d" % (before.rss_kib, before.fds, before.threads,
                                       after.rss_kib, after.fds, after.threads))
    print("max threads during the run: %d; latency counts finite: %s; agent log: %d "
          "warnings, %d tracebacks" % (max(s.threads for s in res.samples), finite,
                                       res.log.count(" WARNING "), res.log.count("Traceback")))
    ends = [CALM + ROUND * (i + 1) for i in range(hostile.rounds)]
    print("RSS at the end of each round (KiB): %s" % ", ".join(
        "%.0f" % Steady.of(res.window(t - 2, t)).rss_kib for t in ends
        if res.window(t - 2, t)))
    for note in hostile.notes[:5]:
        print("note:", note)
    ok = (res.agent_exit is None and not res.errors and finite
          and not any(hostile.attacked["loadavg"])
          and all(hostile.healed["loadavg"]) and all(hostile.healed["mmz"])
          and after.fds <= before.fds and after.threads <= before.threads
          and "Traceback" not in res.log)
    print("verdict: %s" % ("contained" if ok else "NOT contained"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
