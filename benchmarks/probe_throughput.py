"""Agentless probe throughput: pooled SSH sessions against a fresh connection per probe.

N simulated boards are N inventory entries served by one real ``sshd`` on 127.0.0.1
(its own host key, client key and config in a temp directory), each reading a fixture
sysroot. Each probe is the real thing: one batched read over SSH, then the agent's
collectors over the snapshot.

* burst: every board probed at once through ``--concurrency`` workers, ``--rounds``
  times; probes per second and per-probe latency (queueing excluded)
* paced: what Prometheus does, the N probes spread evenly over ``--interval`` seconds
  (pooled sessions); latency p99 against the 200 ms goal

Run as root (sshd): ``python3 benchmarks/probe_throughput.py --boards 200``
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Tuple

from boardfleet.inventory import Board
from boardfleet.probe import Prober
from boardfleet.transports.pool import SessionPool
from boardfleet.transports.secrets import Credentials, Secrets
from boardfleet.transports.ssh import connect_ssh

REPO = Path(__file__).resolve().parents[1]
SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sshd(d: Path, boards: int) -> Tuple[subprocess.Popen, int, Path]:
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)],
                       check=True, timeout=30)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    port = free_port()
    (d / "sshd_config").write_text("\n".join([
        "ListenAddress 127.0.0.1:%d" % port, "HostKey %s" % (d / "host"),
        "PidFile %s" % (d / "sshd.pid"), "AuthorizedKeysFile %s" % (d / "authorized_keys"),
        "PermitRootLogin prohibit-password", "PasswordAuthentication no", "UsePAM no",
        "StrictModes no", "LogLevel ERROR", "MaxStartups %d" % (boards + 50), ""]))
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return proc, port, d / "client"


def percentile(values: List[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def timed_probe(prober: Prober, board: Board, timeout: float) -> Tuple[float, bool]:
    start = time.monotonic()
    body = prober.probe(board, start + timeout)
    return time.monotonic() - start, b"board_probe_success 1.0" in body


def burst(prober: Prober, boards: List[Board], workers: int, rounds: int,
          timeout: float) -> Tuple[float, List[float], int]:
    latencies: List[float] = []
    ok = 0
    start = time.monotonic()
    with ThreadPoolExecutor(workers) as ex:
        for _ in range(rounds):
            for took, good in ex.map(lambda b: timed_probe(prober, b, timeout), boards):
                latencies.append(took)
                ok += good
    return time.monotonic() - start, latencies, ok


def paced(prober: Prober, boards: List[Board], workers: int, interval: float,
          timeout: float) -> Tuple[List[float], int]:
    gap = interval / len(boards)
    start = time.monotonic()
    futures = []
    with ThreadPoolExecutor(workers) as ex:
        for i, b in enumerate(boards):
            time.sleep(max(0.0, start + i * gap - time.monotonic()))
            futures.append(ex.submit(timed_probe, prober, b, timeout))
        results = [f.result() for f in futures]
    return [t for t, _ in results], sum(g for _, g in results)


def report(label: str, wall: float, lat: List[float], ok: int) -> None:
    print("%-22s probes=%-5d ok=%-5d wall=%6.2fs  %7.1f probes/s  p50=%6.1fms  "
          "p99=%6.1fms  max=%6.1fms" % (label, len(lat), ok, wall, len(lat) / wall,
                                       1000 * percentile(lat, 0.5),
                                       1000 * percentile(lat, 0.99), 1000 * max(lat)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boards", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--interval", type=float, default=15.0,
                    help="paced run: seconds over which every board is probed once")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--fixture", default="hi3516ev200")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.stderr.write("run as root: the benchmark starts its own sshd\n")
        return 2
    d = Path(tempfile.mkdtemp(prefix="bf-bench-"))
    proc, port, key = start_sshd(d, args.boards)
    sysroot = str(REPO / "tests" / "fixtures" / args.fixture)
    boards = [Board(name="b%03d" % i, host="127.0.0.1", port=port, mode="agentless",
                    sysroot=sysroot) for i in range(args.boards)]
    secrets = Secrets(Credentials(key_file=str(key)))
    try:
        time.sleep(0.5)
        print("%d boards (fixture %s), %d workers, one sshd on 127.0.0.1:%d"
              % (args.boards, args.fixture, args.concurrency, port))
        for pooled in (True, False):
            pool = SessionPool({"ssh": connect_ssh}, secrets, pooled=pooled)
            prober = Prober(pool)
            name = "pooled" if pooled else "fresh"
            if pooled:
                wall, lat, ok = burst(prober, boards, args.concurrency, 1, args.timeout)
                report("pooled: first (dial)", wall, lat, ok)
            wall, lat, ok = burst(prober, boards, args.concurrency, args.rounds, args.timeout)
            report("%s: burst" % name, wall, lat, ok)
            if pooled:
                start = time.monotonic()
                lat, ok = paced(prober, boards, args.concurrency, args.interval, args.timeout)
                report("pooled: paced %gs" % args.interval, time.monotonic() - start, lat, ok)
                goal = percentile(lat, 0.99) < 0.2 and ok == len(boards)
                print("goal (%d boards every %gs, p99 < 200 ms): %s"
                      % (args.boards, args.interval, "met" if goal else "NOT met"))
            pool.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
