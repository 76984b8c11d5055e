"""Agent overhead against node_exporter, measured in the same run on the same board.

Both exporters read one fixture sysroot (node_exporter through --path.procfs/sysfs/
rootfs, the agent through --sysroot) with comparable collectors: CPU, CPU frequency,
memory, load, thermal zones, hwmon and filesystems. The script prints, for both and
as ratios: scrape latency p50/p99 over N scrapes on one kept-alive connection (as
Prometheus scrapes) and with a new connection per scrape; CPU seconds per scrape
(all of the process's CPU during the scrape loop, background sampling included); RSS
after the scrapes; and idle CPU with a scrape every 5 s (the agent sampling every 1 s),
also for the agent with every default collector of the board.

    python3 benchmarks/agent_vs_node_exporter.py [--board generic] [--scrapes 300]
        [--idle-seconds 60]

Goals (issue 8): p50 <= 0.5 x node_exporter, RSS <= 1.5 x node_exporter,
idle CPU < 0.5 % of one core.
"""

import argparse
import concurrent.futures
import http.client
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


def start_agent(root: Path, port: int, config: Path, comparable: bool) -> subprocess.Popen:
    """The agent with the collectors node_exporter also has, or with its defaults."""
    args = [sys.executable, "-m", "boardfleet_agent", "--sysroot", str(root),
            "--listen", "127.0.0.1:%d" % port, "--statsd-listen", "off",
            "--config", str(config)]
    if comparable:
        args += ["--collector.disable-defaults"]
        args += ["--collector.%s" % c for c in AGENT_COLLECTORS]
    env = dict(os.environ, PYTHONPATH=str(REPO / "agent"))
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def timed_scrapes(port: int, scrapes: int, keep_alive: bool) -> List[float]:
    """Latency of each of ``scrapes`` GET /metrics, on one connection or one each."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    lat: List[float] = []
    try:
        for _ in range(scrapes):
            t = time.perf_counter()
            conn.request("GET", "/metrics", headers={} if keep_alive else {"Connection": "close"})
            resp = conn.getresponse()
            body = resp.read()
            lat.append(time.perf_counter() - t)
            if resp.status != 200 or not body:
                raise SystemExit("port %d answered %d" % (port, resp.status))
            if not keep_alive:
                conn.close()
    finally:
        conn.close()
    lat.sort()
    return lat


def measure(port: int, pid: int, scrapes: int) -> Dict[str, float]:
    timed_scrapes(port, 20, keep_alive=True)  # warm-up
    cpu0 = cpu_seconds(pid)
    lat = timed_scrapes(port, scrapes, keep_alive=True)
    cpu = cpu_seconds(pid) - cpu0
    fresh = timed_scrapes(port, scrapes, keep_alive=False)
    return {"p50": statistics.median(lat), "p99": lat[int(len(lat) * 0.99) - 1],
            "p50_new_conn": statistics.median(fresh),
            "p99_new_conn": fresh[int(len(fresh) * 0.99) - 1],
            "cpu_per_scrape": cpu / scrapes, "rss": float(rss_bytes(pid))}


def idle_cpu(port: int, pid: int, seconds: float) -> float:
    """Share of one core used while scraped every 5 s."""
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    while time.monotonic() - t0 < seconds:
        timed_scrapes(port, 1, keep_alive=True)
        time.sleep(5)
    return (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def run(board: str, scrapes: int, idle_seconds: float) -> Tuple[dict, dict]:
    root = REPO / "tests" / "fixtures" / board
    tmp = Path(tempfile.mkdtemp(prefix="bf-bench-"))
    config = tmp / "agent.toml"
    # Every collector sampled every second, the slow ones included.
    config.write_text("sample_interval = 1\n" + "".join(
        "[collectors.%s]\ninterval = 1\n" % c
        for c in ("mmz", "hisi_ddr", "horizon_ddr", "dmabuf_process")))
    nport, aport, fport = free_port(), free_port(), free_port()
    node = start_node_exporter(root, nport)
    agent = start_agent(root, aport, config, comparable=True)
    full = start_agent(root, fport, config, comparable=False)
    try:
        wait_up("http://127.0.0.1:%d/metrics" % nport, node)
        wait_up("http://127.0.0.1:%d/metrics" % aport, agent)
        wait_up("http://127.0.0.1:%d/metrics" % fport, full)
        n = measure(nport, node.pid, scrapes)
        a = measure(aport, agent.pid, scrapes)
        if idle_seconds > 0:
            # All at once: the same machine load for each.
            with concurrent.futures.ThreadPoolExecutor(3) as pool:
                idle = [pool.submit(idle_cpu, port, proc.pid, idle_seconds)
                        for port, proc in ((nport, node), (aport, agent), (fport, full))]
                n["idle_cpu"], a["idle_cpu"], a["idle_cpu_all"] = (f.result() for f in idle)
        return n, a
    finally:
        for proc in (node, agent, full):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--board", default="generic", help="fixture board under tests/fixtures")
    p.add_argument("--scrapes", type=int, default=500, help="scrapes per exporter (min 200)")
    p.add_argument("--idle-seconds", type=float, default=60.0,
                   help="how long to measure idle CPU (0 skips it)")
    args = p.parse_args()
    scrapes = max(args.scrapes, 200)
    n, a = run(args.board, scrapes, args.idle_seconds)
    cpu_model = next((ln.split(":", 1)[1].strip() for ln in
                      Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "unknown CPU")
    print("machine: %s, %d cores, Python %s; board fixture: %s; %d scrapes each"
          % (cpu_model, os.cpu_count() or 0, sys.version.split()[0], args.board, scrapes))
    print("%-34s %14s %14s %8s" % ("", "node_exporter", "boardfleet", "ratio"))
    rows = [("scrape p50, keep-alive (ms)", "p50", 1e3),
            ("scrape p99, keep-alive (ms)", "p99", 1e3),
            ("scrape p50, new connection (ms)", "p50_new_conn", 1e3),
            ("scrape p99, new connection (ms)", "p99_new_conn", 1e3),
            ("CPU per scrape (ms)", "cpu_per_scrape", 1e3),
            ("RSS (MiB)", "rss", 1 / 2**20)]
    if args.idle_seconds > 0:
        rows.append(("idle CPU, scrape every 5 s (%)", "idle_cpu", 100))
    for label, key, scale in rows:
        print("%-34s %14.3f %14.3f %8.2f" % (label, n[key] * scale, a[key] * scale,
                                             a[key] / n[key] if n[key] else float("nan")))
    goals = [("scrape p50 <= 0.5 x node_exporter", a["p50"] <= 0.5 * n["p50"]),
             ("RSS <= 1.5 x node_exporter", a["rss"] <= 1.5 * n["rss"])]
    if args.idle_seconds > 0:
        goals.append(("idle CPU < 0.5 % of one core", a["idle_cpu"] < 0.005))
    if args.idle_seconds > 0:
        print("agent idle CPU with every default collector of this board: %.3f %% of one core"
              % (a["idle_cpu_all"] * 100))
    for goal, ok in goals:
        print("goal %-36s %s" % (goal, "met" if ok else "NOT met"))
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    raise SystemExit(main())
