"""Capacity: one Prometheus against 2 vmagent shards + VictoriaMetrics (+ vmalert), the
same virtual fleet scraped by both at once.

The fleet is ``boardfleet simulate --virtual`` in its own process (every board the real
agent's page of a fixture platform, 90 to 170 series). Both sides read the same targets
with the committed prometheus.yml settings (10 s scrapes, 15 s rule evaluation, the
real generated rules) and send alerts to one Alertmanager. After ``--warmup`` seconds
the script measures for ``--seconds``:

* active series and samples/s ingested (each server's own counters);
* scrape duration p99 (``scrape_duration_seconds`` over the window, same query on each);
* rule evaluation time per group iteration (Prometheus' and vmalert's own summaries);
* CPU (share of one core) and RSS of every process (/proc);
* the heaviest fleet-overview panel query (the slowest on Prometheus), median of 5.

Run: ``.venv/bin/python benchmarks/capacity.py --boards 1000`` (about 2 minutes).
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

from boardfleet.scaleout import Topology, VMPorts, vmagent_config, vmalert_rules

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "import sys; from boardfleet.cli import main; sys.exit(main())"]
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 60) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            get(url, 2)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("%s did not answer" % url)


def query(base: str, expr: str) -> List[Dict[str, Any]]:
    body = json.loads(get(base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
    if body.get("status") != "success":
        raise RuntimeError("%s: %s" % (expr, body))
    return body["data"]["result"]


def scalar(base: str, expr: str) -> float:
    r = query(base, expr)
    return float(r[0]["value"][1]) if r else float("nan")


def counter(base: str, name: str, match: str = "") -> float:
    """Sum of a family's samples on a component's own /metrics page."""
    total = 0.0
    for line in get(base + "/metrics").splitlines():
        if line.startswith(name) and not line.startswith("#") and match in line:
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] == name:
                total += float(value)
    return total


def cpu_seconds(pid: int) -> float:
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> float:
    m = re.search(r"VmRSS:\s+(\d+)", Path("/proc/%d/status" % pid).read_text())
    return int(m.group(1)) / 1024 if m else float("nan")


def spawn(stack: ExitStack, argv: List[str], log: Path, health: str) -> subprocess.Popen:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=log.parent)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    stack.callback(stop)
    if health:
        wait(health)
    return proc


def heaviest_query(prom: str) -> Tuple[str, str]:
    sys.path.insert(0, str(REPO / "tests"))
    from grafana.grafana_panels import targets  # the panels as the tests read them

    timed = []
    for t in targets():
        if t.dashboard != "fleet-overview.json":
            continue
        started = time.perf_counter()
        query(prom, t.promql())
        timed.append((time.perf_counter() - started, t.id, t.promql()))
    _, tid, expr = max(timed)
    return tid, expr


def mean_ms(s0: Dict[str, float], s1: Dict[str, float], key: str) -> float:
    """Mean of a summary over the window, in ms, from its _sum and _count deltas."""
    n = s1[key + "_n"] - s0[key + "_n"]
    return 1000 * (s1[key + "_sum"] - s0[key + "_sum"]) / n if n else float("nan")


def latency(base: str, expr: str, n: int = 5) -> float:
    runs = []
    for _ in range(n):
        started = time.perf_counter()
        query(base, expr)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boards", type=int, default=1000)
    ap.add_argument("--warmup", type=float, default=40.0, metavar="SECONDS")
    ap.add_argument("--seconds", type=float, default=60.0, metavar="SECONDS")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = ap.parse_args()
    # `timeout` or Ctrl-C: unwind the ExitStack, so no server outlives the run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    d = Path(tempfile.mkdtemp(prefix="boardfleet-capacity-"))
    prom_cfg = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    rules = [REPO / "prometheus" / r for r in prom_cfg["rule_files"]]
    scrape = prom_cfg["global"]["scrape_interval"]
    with ExitStack() as stack:
        if not args.keep:
            stack.callback(shutil.rmtree, d, True)
        print("starting %d virtual boards ..." % args.boards, flush=True)
        targets = d / "targets.yml"
        fleet = spawn(stack, [*CLI, "simulate", "--virtual", "--boards", str(args.boards),
                              "--targets", str(targets)], d / "fleet.log", "")
        for _ in range(600):
            if targets.exists():
                break
            time.sleep(0.1)
        series = (d / "fleet.log").read_text().strip()
        am_port = free_port()
        am = "http://127.0.0.1:%d" % am_port
        (d / "am.yml").write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
        spawn(stack, ["prometheus-alertmanager", "--config.file=%s" % (d / "am.yml"),
                      "--storage.path=%s" % (d / "am"), "--cluster.listen-address=",
                      "--web.listen-address=127.0.0.1:%d" % am_port], d / "am.log",
              am + "/-/ready")
        jobs = [{"job_name": "boardfleet-agent", "honor_labels": True,
                 "file_sd_configs": [{"files": [str(targets)]}]}]
        cfg = {"global": prom_cfg["global"], "scrape_configs": jobs,
               "rule_files": [str(r) for r in rules],
               "alerting": {"alertmanagers": [{"static_configs": [
                   {"targets": ["127.0.0.1:%d" % am_port]}]}]}}
        (d / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        p_port = free_port()
        prom = "http://127.0.0.1:%d" % p_port
        procs = {"prometheus": spawn(stack, [
            "prometheus", "--config.file=%s" % (d / "prometheus.yml"),
            "--storage.tsdb.path=%s" % (d / "prom"),
            "--web.listen-address=127.0.0.1:%d" % p_port], d / "prom.log", prom + "/-/ready")}
        (d / "vm").mkdir()
        topo = Topology(d / "vm", 2, 1, ports=VMPorts(free_port(), 0, free_port()),
                        shard_ports=[free_port(), free_port()])
        procs["victoria-metrics"] = spawn(stack, topo.victoria_metrics(
            "victoria-metrics", scrape), d / "vm.log", topo.url + "/health")
        (d / "vmagent.yml").write_text(yaml.safe_dump(vmagent_config(cfg)))
        for i in range(2):
            procs["vmagent-%d" % i] = spawn(stack, topo.vmagent(
                "vmagent", i, d / "vmagent.yml"), d / ("vmagent-%d.log" % i),
                topo.shard_url(i) + "/health")
        procs["vmalert"] = spawn(stack, topo.vmalert(
            "vmalert", vmalert_rules(rules, d / "vmalert-rules"), am,
            prom_cfg["global"]["evaluation_interval"]), d / "vmalert.log",
            topo.vmalert_url + "/health")
        procs["fleet (shared)"] = fleet
        print("%s\nwarming up %.0f s ..." % (series, args.warmup), flush=True)
        time.sleep(args.warmup)

        def snapshot() -> Dict[str, float]:
            return {
                "p_samples": counter(prom, "prometheus_tsdb_head_samples_appended_total"),
                "v_rows": counter(topo.url, "vm_rows_inserted_total"),
                "p_rule_sum": counter(prom, "prometheus_rule_group_duration_seconds_sum"),
                "p_rule_n": counter(prom, "prometheus_rule_group_duration_seconds_count"),
                "v_rule_sum": counter(topo.vmalert_url, "vmalert_iteration_duration_seconds_sum"),
                "v_rule_n": counter(topo.vmalert_url,
                                    "vmalert_iteration_duration_seconds_count"),
                **{"cpu " + n: cpu_seconds(p.pid) for n, p in procs.items()}}

        t0, s0 = time.monotonic(), snapshot()
        print("measuring %.0f s ..." % args.seconds, flush=True)
        time.sleep(args.seconds)
        t1, s1 = time.monotonic(), snapshot()
        dt = t1 - t0
        window = "%ds" % int(args.seconds)
        p99 = 'quantile(0.99, quantile_over_time(0.99, scrape_duration_seconds' \
              '{job="boardfleet-agent"}[%s]))' % window
        tid, expr = heaviest_query(prom)
        up_p = scalar(prom, 'count(up{job="boardfleet-agent"} == 1)')
        up_v = scalar(topo.url, 'count(up{job="boardfleet-agent"} == 1)')
        rows = [
            ("boards up", up_p, up_v),
            ("active series", counter(prom, "prometheus_tsdb_head_series"),
             counter(topo.url, "vm_cache_entries", 'type="storage/hour_metric_ids"')),
            ("samples/s ingested", (s1["p_samples"] - s0["p_samples"]) / dt,
             (s1["v_rows"] - s0["v_rows"]) / dt),
            ("scrape duration p99 (ms)", 1000 * scalar(prom, p99), 1000 * scalar(topo.url, p99)),
            ("rule group eval (ms, mean)", mean_ms(s0, s1, "p_rule"), mean_ms(s0, s1, "v_rule")),
            ("heaviest fleet query (ms)", 1000 * latency(prom, expr),
             1000 * latency(topo.url, expr)),
        ]
        cpu = {n: 100 * (s1["cpu " + n] - s0["cpu " + n]) / dt for n in procs}
        rss = {n: rss_mib(p.pid) for n, p in procs.items()}
        vm_side = [n for n in procs if n.startswith(("victoria", "vmagent", "vmalert"))]
        rows += [("CPU, % of one core", cpu["prometheus"], sum(cpu[n] for n in vm_side)),
                 ("RSS (MiB)", rss["prometheus"], sum(rss[n] for n in vm_side))]
        print("\n%d boards, scrape %s, window %.0f s; heaviest query: %s"
              % (args.boards, scrape, dt, tid))
        print("%-28s %14s %16s %8s" % ("", "Prometheus", "vmagent x2 + VM", "VM/Prom"))
        for name, a, b in rows:
            print("%-28s %14.1f %16.1f %8.2f" % (name, a, b, b / a if a else float("nan")))
        print("\nper process:        CPU %   RSS MiB")
        for n in procs:
            print("  %-18s %5.1f %9.1f" % (n, cpu[n], rss[n]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
