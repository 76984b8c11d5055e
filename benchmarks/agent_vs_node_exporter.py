"""Agent footprint against node_exporter, both measured in the same run on one fixture.

Both exporters read one fixture sysroot (node_exporter through --path.procfs/sysfs/
rootfs, the agent through --sysroot) with comparable collectors: CPU, CPU frequency,
memory, load, thermal zones, hwmon and filesystems; the agent with default settings
otherwise (StatsD off). Printed, with ratios against node_exporter (issue 18):

- CPU per 60 s, scraped every 5 s and every 10 s: whole-process user+system CPU (every
  thread, ended ones included, from ``/proc/<pid>/stat``) over ``--seconds`` of steady
  state after a warm-up, scaled to 60 s. Start-up is left out rather than subtracted:
  it costs 300-400 ms and varies by more than the steady state's whole CPU, which made
  the earlier "long run minus short run" figures noise. All processes run side by side.
- RSS (VmRSS) after the CPU run, for the agent under each ``--python``.
- Scrape latency p50/p99 on one kept-alive connection (as Prometheus scrapes), the
  scrapes spaced ``--spacing`` seconds apart (more than the agent's 1 s sample interval,
  so that each one gets values read for it), after a warm-up of WARMUP scrapes (the
  agent learns the scraper's cadence and reads just before each scrape), and the age of
  the agent's values at each scrape (node_exporter reads during the scrape).

    python3 benchmarks/agent_vs_node_exporter.py [--board generic] [--seconds 60]
        [--python /usr/bin/python3.8 ...] [--agent-dir DIR] [--imports]

``--imports`` prints instead what each import costs: RSS of a fresh interpreter after
importing the module, and ``-X importtime``'s cumulative time. ``--footprint`` prints
the agent's RSS and threads with its defaults on every fixture board (StatsD on).

Goals (issue 18): CPU ratio <= 1.0 at both cadences, RSS <= 0.75 x node_exporter on
Python 3.8 and 3.11, scrape p99 <= 0.5 x node_exporter.
"""

import argparse
import concurrent.futures
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Sequence, Set, Tuple

REPO = Path(__file__).resolve().parents[1]
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
NODE_COLLECTORS = ["cpu", "cpufreq", "meminfo", "loadavg", "thermal_zone", "hwmon",
                   "filesystem"]
WARMUP = 10  # scrapes before the latency run counts
AGENT_COLLECTORS = ["cpu", "cpufreq", "memory", "loadavg", "thermal", "filesystem", "info"]
IMPORTS = ["ssl", "hashlib", "http.client", "http.server", "urllib.request",
           "wsgiref.simple_server", "prometheus_client", "logging", "argparse", "subprocess",
           "boardfleet_agent.families", "boardfleet_agent.exposition",
           "boardfleet_agent.runner", "boardfleet_agent.app", "boardfleet_agent.web.config",
           "boardfleet_agent.web.server", "boardfleet_agent.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int) -> int:
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Exporter:
    """One exporter process and what was measured of it."""

    def __init__(self, name: str, args: List[str], env: Dict[str, str] | None = None) -> None:
        self.name = name
        self.port = free_port()
        self.proc = subprocess.Popen(
            [a.replace("{port}", str(self.port)) for a in args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.conn: http.client.HTTPConnection | None = None

    def scrape(self) -> Tuple[float, bytes]:
        """One GET /metrics on a kept-alive connection: (seconds, body)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        t = time.perf_counter()
        self.conn.request("GET", "/metrics")
        resp = self.conn.getresponse()
        body = resp.read()
        took = time.perf_counter() - t
        if resp.status != 200 or not body:
            raise SystemExit("%s answered %d" % (self.name, resp.status))
        return took, body

    def wait_up(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("%s exited early (%s)" % (self.name, self.proc.returncode))
            try:
                self.scrape()
                return
            except OSError:
                self.conn = None
                time.sleep(0.05)
        raise SystemExit("%s did not come up" % self.name)

    def cpu(self) -> float:
        """User + system CPU seconds so far, every thread (ended ones too)."""
        fields = Path("/proc/%d/stat" % self.proc.pid).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> float:
        """Stop it; its whole CPU time (user + system, from wait4)."""
        if self.conn is not None:
            self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pid, _, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = 0
                return usage.ru_utime + usage.ru_stime
            time.sleep(0.02)
        self.proc.kill()
        _, _, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = -9
        return usage.ru_utime + usage.ru_stime


def agent_env(agent_dir: Path, extra_path: str) -> Dict[str, str]:
    path = os.pathsep.join(p for p in (str(agent_dir), extra_path) if p)
    return dict(os.environ, PYTHONPATH=path)


class Launch:
    """How an agent is started: from a checkout on PYTHONPATH, or with ``--bundle`` as
    the installer starts it on a board (``python3 agent.pyz --config agent.toml`` in the
    installer's environment, with the bytecode it prepares), from a zipapp built of that
    checkout (with today's ``__main__``: an older checkout's agent runs from bytecode too)."""

    def __init__(self, agent_dir: Path, extra_path: str, bundle: bool) -> None:
        self.agent_dir, self.extra_path, self.bundle = agent_dir, extra_path, bundle
        self._built: Dict[Path, Path] = {}
        self._prepared: Set[Tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._tmp = Path(tempfile.mkdtemp(prefix="bench-bundle-"))

    def command(self, spec: str) -> Tuple[List[str], Dict[str, str], str]:
        """(argv prefix, environment, label) for ``PYTHON`` or ``PYTHON=DIR`` (the agent
        found in DIR, to compare another checkout)."""
        python, _, other = spec.partition("=")
        agent_dir = Path(other) if other else self.agent_dir
        label = python_label(python) + (" (%s)" % agent_dir.parent.name if other else "")
        if not self.bundle:
            return [python, "-m", "boardfleet_agent"], agent_env(agent_dir, self.extra_path), label
        from boardfleet.installer import AGENT_ENV, render_config

        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(AGENT_ENV)
        config = self._tmp / "agent.toml"  # as the installer writes it (flags override it)
        config.write_text(render_config("0.0.0.0:9776", "/", "auto"))
        with self._lock:  # the installer's bytecode step, once for each Python and bundle
            pyz = str(self._pyz(agent_dir))
            if (python, pyz) not in self._prepared:
                subprocess.run([python, pyz, "--prepare-bytecode"], env=env, check=True)
                self._prepared.add((python, pyz))
        return [python, pyz, "--config", str(config)], env, label + " pyz"

    def _pyz(self, agent_dir: Path) -> Path:
        if agent_dir not in self._built:
            from boardfleet.bundle import build, write

            path = self._tmp / ("agent%d.pyz" % len(self._built))
            write(str(path), build({"boardfleet_agent": agent_dir / "boardfleet_agent"}))
            self._built[agent_dir] = path
        return self._built[agent_dir]


def start_all(root: Path, pythons: Sequence[str], launch: Launch) -> List[Exporter]:
    node = [NODE_EXPORTER, "--web.listen-address=127.0.0.1:{port}",
            "--path.procfs=%s" % (root / "proc"), "--path.sysfs=%s" % (root / "sys"),
            "--path.rootfs=%s" % root, "--collector.disable-defaults"]
    out = [Exporter("node_exporter", node + ["--collector.%s" % c for c in NODE_COLLECTORS])]
    for python in pythons:
        command, env, label = launch.command(python)
        args = [*command, "--sysroot", str(root), "--listen", "127.0.0.1:{port}",
                "--statsd-listen", "off", "--collector.disable-defaults"]
        args += ["--collector.%s" % c for c in AGENT_COLLECTORS]
        out.append(Exporter(label, args, env))
    for e in out:
        e.wait_up()
    return out


def python_label(python: str) -> str:
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    return "agent, Python %s" % version


def cpu_run(root: Path, pythons: Sequence[str], launch: Launch, seconds: float,
            cadence: float) -> Tuple[Dict[str, float], Dict[str, int]]:
    """CPU seconds per 60 s of each exporter scraped every ``cadence`` s for ``seconds``
    after a warm-up (three scrapes 1.1 s apart); RSS at the end."""
    exporters = start_all(root, pythons, launch)
    for _ in range(3):
        time.sleep(1.1)
        for e in exporters:
            e.scrape()
    time.sleep(cadence)
    before = {e.name: e.cpu() for e in exporters}
    t0 = time.monotonic()
    while True:
        for e in exporters:
            e.scrape()
        if time.monotonic() - t0 + cadence > seconds:
            break
        time.sleep(max(0.0, cadence - (time.monotonic() - t0) % cadence))
    time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
    scale = 60.0 / (time.monotonic() - t0)
    used = {e.name: (e.cpu() - before[e.name]) * scale for e in exporters}
    rss = {e.name: rss_bytes(e.proc.pid) for e in exporters}
    for e in exporters:
        e.stop()
    return used, rss


def latency_run(root: Path, pythons: Sequence[str], launch: Launch, scrapes: int,
                spacing: float) -> Dict[str, Dict[str, float]]:
    """p50/p99 of spaced kept-alive scrapes, all exporters in turn, after WARMUP scrapes
    (the agent learns the cadence from the first five); the agent's value age."""
    exporters = start_all(root, pythons, launch)
    lat: Dict[str, List[float]] = {e.name: [] for e in exporters}
    age: Dict[str, List[float]] = {e.name: [] for e in exporters}
    try:
        for _ in range(WARMUP):
            for e in exporters:
                e.scrape()
            time.sleep(spacing)
        for _ in range(scrapes):
            for e in exporters:
                took, body = e.scrape()
                lat[e.name].append(took)
                age[e.name].append(value_age(body))
            time.sleep(spacing)
    finally:
        for e in exporters:
            e.stop()
    out = {}
    for name, values in lat.items():
        values.sort()
        out[name] = {"p50": statistics.median(values),
                     "p99": values[max(0, int(len(values) * 0.99) - 1)],
                     "age_p50": statistics.median(age[name]), "age_max": max(age[name])}
    return out


def value_age(body: bytes) -> float:
    """Seconds between the oldest collector run served and now (0 for node_exporter)."""
    stamps = [float(m) for m in re.findall(
        rb"^board_collector_last_success_timestamp_seconds\{[^}]*\} (\S+)$", body, re.M)]
    return time.time() - min(stamps) if stamps else 0.0


def import_costs(python: str, agent_dir: Path, extra: str) -> List[Tuple[str, str, str]]:
    """(module, RSS after importing it, cumulative import time) in fresh interpreters."""
    env = agent_env(agent_dir, extra)
    probe = ("import sys\nfor line in open('/proc/self/status'):\n"
             "    if line.startswith('VmRSS:'): print(int(line.split()[1]) / 1024)")

    def rss(stmt: str) -> float | None:
        r = subprocess.run([python, "-c", stmt + "\n" + probe], capture_output=True,
                           text=True, env=env)
        return float(r.stdout) if r.returncode == 0 else None

    bare = rss("") or 0.0
    rows = [("bare interpreter", "%.1f MiB" % bare, "")]
    for mod in IMPORTS:
        after = rss("import " + mod)
        if after is None:
            rows.append((mod, "not importable", ""))
            continue
        r = subprocess.run([python, "-X", "importtime", "-c", "import " + mod],
                           capture_output=True, text=True, env=env)
        cumulative = [int(line.split("|")[1]) for line in r.stderr.splitlines()
                      if line.rstrip().endswith("| " + mod)]
        rows.append((mod, "+%.1f MiB" % (after - bare),
                     "%.1f ms" % (cumulative[-1] / 1000) if cumulative else ""))
    return rows


def footprint(pythons: Sequence[str], launch: Launch) -> None:
    """RSS and threads of the agent with its defaults on every fixture board."""
    boards = sorted(d.name for d in (REPO / "tests" / "fixtures").iterdir()
                    if (d / "proc").is_dir())
    commands = [launch.command(p) for p in pythons]
    print("%-14s %s" % ("board", " ".join("%30s" % label for _, _, label in commands)))
    for board in boards:
        cells = []
        for command, env, _ in commands:
            args = [*command, "--sysroot", str(REPO / "tests" / "fixtures" / board),
                    "--listen", "127.0.0.1:{port}"]
            e = Exporter(board, args, env)
            e.wait_up()
            for _ in range(3):
                time.sleep(1.1)
                e.scrape()
            threads = len(os.listdir("/proc/%d/task" % e.proc.pid))
            cells.append("%.1f MiB, %d threads" % (rss_bytes(e.proc.pid) / 2**20, threads))
            e.stop()
        print("%-14s %s" % (board, " ".join("%30s" % c for c in cells)))


def ratio(a: float, n: float) -> str:
    return "%.2f" % (a / n) if n else "n/a"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--board", default="generic", help="fixture board under tests/fixtures")
    p.add_argument("--seconds", type=float, default=120.0,
                   help="steady-state run length (CPU is read in 10 ms ticks: keep it long)")
    p.add_argument("--scrapes", type=int, default=200, help="spaced scrapes for latency")
    p.add_argument("--spacing", type=float, default=0.6, help="seconds between those")
    p.add_argument("--python", action="append", dest="pythons",
                   help="interpreter for an agent (repeatable; default this one); "
                        "PYTHON=DIR runs the agent found in DIR")
    p.add_argument("--agent-dir", type=Path, default=REPO / "agent",
                   help="where boardfleet_agent is (an older checkout, to compare)")
    p.add_argument("--extra-path", default="",
                   help="more PYTHONPATH for the agent (prometheus_client for old checkouts)")
    p.add_argument("--bundle", action="store_true",
                   help="run each agent as the installer does, python3 agent.pyz (a zipapp "
                        "built of its checkout, in the installer's environment) instead of "
                        "-m boardfleet_agent")
    p.add_argument("--imports", action="store_true", help="print import costs only")
    p.add_argument("--footprint", action="store_true",
                   help="print the agent's RSS on every fixture board only")
    args = p.parse_args()
    pythons = args.pythons or [sys.executable]
    cpu_model = next((ln.split(":", 1)[1].strip() for ln in
                      Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "unknown CPU")
    print("machine: %s, %d cores; board fixture: %s; agent from %s"
          % (cpu_model, os.cpu_count() or 0, args.board, args.agent_dir))
    if args.imports:
        for python in pythons:
            print("\n%s" % python_label(python))
            print("%-34s %16s %12s" % ("import", "RSS", "cumulative"))
            for row in import_costs(python, args.agent_dir, args.extra_path):
                print("%-34s %16s %12s" % row)
        return 0
    launch = Launch(args.agent_dir, args.extra_path, args.bundle)
    if args.footprint:
        footprint(pythons, launch)
        return 0
    root = REPO / "tests" / "fixtures" / args.board
    cpu, rss = {}, {}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        # Both cadences side by side.
        jobs = {cadence: pool.submit(cpu_run, root, pythons, launch, args.seconds, cadence)
                for cadence in (5.0, 10.0)}
        for cadence, job in jobs.items():
            cpu[cadence], rss[cadence] = job.result()
    lat = latency_run(root, pythons, launch, args.scrapes, args.spacing)
    names = list(cpu[5.0])
    node = names[0]
    for i, n in enumerate(names):
        print("column %d: %s" % (i + 1, n))
    print("%-40s %s" % ("", " ".join("%14s" % ("col %d" % (i + 1)) for i in range(len(names)))))
    goals = []
    for cadence in (5.0, 10.0):
        steady = cpu[cadence]
        print("%-40s %s" % ("CPU per 60 s, scraped every %gs (ms)" % cadence,
                            " ".join("%14s" % ("%.0f" % (steady[n] * 1e3) + (
                                "" if n == node else " (%s)" % ratio(steady[n], steady[node])))
                                     for n in names)))
        goals += [("CPU <= 1.0 x at %gs, %s" % (cadence, n), steady[n] <= steady[node])
                  for n in names[1:]]
    r = rss[5.0]
    print("%-40s %s" % ("RSS after the 5 s run (MiB)", " ".join(
        "%14s" % ("%.1f" % (r[n] / 2**20) + ("" if n == node else " (%s)" % ratio(r[n], r[node])))
        for n in names)))
    goals += [("RSS <= 0.75 x, %s" % n, r[n] <= 0.75 * r[node]) for n in names[1:]]
    for key, label in (("p50", "scrape p50, keep-alive (ms)"),
                       ("p99", "scrape p99, keep-alive (ms)")):
        print("%-40s %s" % (label, " ".join("%14s" % (
            "%.3f" % (lat[n][key] * 1e3)
            + ("" if n == node else " (%s)" % ratio(lat[n][key], lat[node][key])))
            for n in names)))
    for key, label in (("age_p50", "oldest value at a scrape, p50 (s)"),
                       ("age_max", "oldest value at a scrape, max (s)")):
        print("%-40s %s" % (label, " ".join("%14.3f" % lat[n][key] for n in names)))
    goals += [("p99 <= 0.5 x, %s" % n, lat[n]["p99"] <= 0.5 * lat[node]["p99"])
              for n in names[1:]]
    for goal, ok in goals:
        print("goal %-50s %s" % (goal, "met" if ok else "NOT met"))
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    raise SystemExit(main())
