"""Agent overhead against node_exporter, measured in the same run on the same board.

Both exporters read one fixture sysroot (node_exporter through --path.procfs/sysfs/
rootfs, the agent through --sysroot) with comparable collectors: CPU, CPU frequency,
memory, load, thermal zones, hwmon and filesystems. The script prints scrape latency
p50/p99 over N scrapes, CPU seconds per scrape and RSS for both, the ratios, and the
agent's idle CPU with background sampling every 1 s and a scrape every 5 s.

    python3 benchmarks/agent_vs_node_exporter.py [--board generic] [--scrapes 300]
        [--idle-seconds 60]

Goals (issue 8): p50 <= 0.5 x node_exporter, RSS <= 1.5 x node_exporter,
idle CPU < 0.5 % of one core.
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Tuple

REPO = Path(__file__).resolve().parents[1]
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
NODE_COLLECTORS = ["cpu", "cpufreq", "meminfo", "loadavg", "thermal_zone", "hwmon",
                   "filesystem"]
AGENT_COLLECTORS = ["cpu", "cpufreq", "memory", "loadavg", "thermal", "filesystem", "info"]
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_bytes(pid: int) -> int:
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def wait_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("%s exited early with status %s" % (url, proc.returncode))
        try:
            fetch(url)
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("%s did not come up" % url)


def start_node_exporter(root: Path, port: int) -> subprocess.Popen:
    args = [NODE_EXPORTER, "--web.listen-address=127.0.0.1:%d" % port,
            "--path.procfs=%s" % (root / "proc"), "--path.sysfs=%s" % (root / "sys"),
            "--path.rootfs=%s" % root, "--collector.disable-defaults"]
    args += ["--collector.%s" % c for c in NODE_COLLECTORS]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_agent(root: Path, port: int, config: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "boardfleet_agent", "--sysroot", str(root),
            "--listen", "127.0.0.1:%d" % port, "--statsd-listen", "off",
            "--config", str(config), "--collector.disable-defaults"]
    args += ["--collector.%s" % c for c in AGENT_COLLECTORS]
    env = dict(os.environ, PYTHONPATH=str(REPO / "agent"))
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def measure(url: str, pid: int, scrapes: int) -> Dict[str, float]:
    for _ in range(10):  # warm-up
        fetch(url)
    lat: List[float] = []
    cpu0 = cpu_seconds(pid)
    for _ in range(scrapes):
        t = time.perf_counter()
        fetch(url)
        lat.append(time.perf_counter() - t)
    cpu = cpu_seconds(pid) - cpu0
    lat.sort()
    return {"p50": statistics.median(lat), "p99": lat[int(len(lat) * 0.99) - 1],
            "cpu_per_scrape": cpu / scrapes, "rss": float(rss_bytes(pid))}


def idle_cpu(url: str, pid: int, seconds: float) -> float:
    """CPU share of one core while scraped every 5 s (background sampling at 1 s)."""
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    while time.monotonic() - t0 < seconds:
        fetch(url)
        time.sleep(5)
    return (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def run(board: str, scrapes: int, idle_seconds: float) -> Tuple[dict, dict, float]:
    root = REPO / "tests" / "fixtures" / board
    tmp = Path(tempfile.mkdtemp(prefix="bf-bench-"))
    config = tmp / "agent.toml"
    # Background sampling every second for every sampled collector the board has.
    config.write_text("".join("[collectors.%s]\ninterval = 1\n" % c
                              for c in ("mmz", "hisi_ddr", "horizon_ddr", "dmabuf_process")))
    nport, aport = free_port(), free_port()
    node = start_node_exporter(root, nport)
    agent = start_agent(root, aport, config)
    try:
        nurl, aurl = "http://127.0.0.1:%d/metrics" % nport, "http://127.0.0.1:%d/metrics" % aport
        wait_up(nurl, node)
        wait_up(aurl, agent)
        n = measure(nurl, node.pid, scrapes)
        a = measure(aurl, agent.pid, scrapes)
        idle = idle_cpu(aurl, agent.pid, idle_seconds) if idle_seconds > 0 else float("nan")
        return n, a, idle
    finally:
        stop(node)
        stop(agent)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--board", default="generic", help="fixture board under tests/fixtures")
    p.add_argument("--scrapes", type=int, default=300)
    p.add_argument("--idle-seconds", type=float, default=60.0,
                   help="how long to measure idle CPU (0 skips it)")
    args = p.parse_args()
    n, a, idle = run(args.board, max(args.scrapes, 200), args.idle_seconds)
    cpu_model = next((ln.split(":", 1)[1].strip() for ln in
                      Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "unknown CPU")
    print("machine: %s, %d cores; board fixture: %s; %d scrapes each"
          % (cpu_model, os.cpu_count() or 0, args.board, max(args.scrapes, 200)))
    print("%-22s %14s %14s %8s" % ("", "node_exporter", "boardfleet", "ratio"))
    rows = [("scrape p50 (ms)", "p50", 1e3), ("scrape p99 (ms)", "p99", 1e3),
            ("CPU per scrape (ms)", "cpu_per_scrape", 1e3), ("RSS (MiB)", "rss", 1 / 2**20)]
    for label, key, scale in rows:
        print("%-22s %14.2f %14.2f %8.2f" % (label, n[key] * scale, a[key] * scale,
                                             a[key] / n[key] if n[key] else float("nan")))
    print("agent idle CPU (1 s sampling, 5 s scrapes): %.3f %% of one core" % (idle * 100))
    goals = [("p50 <= 0.5 x node_exporter", a["p50"] <= 0.5 * n["p50"]),
             ("RSS <= 1.5 x node_exporter", a["rss"] <= 1.5 * n["rss"]),
             ("idle CPU < 0.5 %", idle < 0.005)]
    for goal, ok in goals:
        print("goal %-30s %s" % (goal, "met" if ok else "NOT met"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
