"""CPU and RSS of the agent's HTTP server alone: this checkout's against another's (issue 18).

Each ``MetricsServer`` runs in its own interpreter and serves a fixed body (the generic
fixture's exposition), so that only HTTP handling costs CPU. Requests alternate
between the servers, so load on the machine falls on both alike. CPU is the sum of
the threads' run time from ``/proc/<pid>/task/*/schedstat`` (nanoseconds) when idle,
and user+system ticks from ``/proc/<pid>/stat`` over many requests (handler threads
end, and take their schedstat with them).

    python3 benchmarks/agent_http_cpu.py --other /tmp/before/agent [--requests 3000]
        [--python /usr/bin/python3.8]
"""

import argparse
import contextlib
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
SERVE = """\
import sys
from boardfleet_agent.web.server import MetricsServer
body = open(sys.argv[1], "rb").read()
srv = MetricsServer(("127.0.0.1", 0), lambda: body, "generic")
print(srv.server_address[1], flush=True)
srv.serve_forever()
"""


def cpu_ns(pid: int) -> int:
    """Run time of the live threads, to the nanosecond (threads that ended are left out)."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        with contextlib.suppress(OSError, ValueError):  # a thread that just ended
            total += int(Path("/proc/%d/task/%s/schedstat" % (pid, task)).read_text().split()[0])
    return total


def cpu_ticks_ns(pid: int) -> int:
    """User+system time of all threads, ended ones too, in clock ticks (as ns)."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 10**9 // os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    def __init__(self, name: str, python: str, agent_dir: Path, body: Path) -> None:
        self.name = name
        self.proc = subprocess.Popen([python, "-c", SERVE, str(body)], stdout=subprocess.PIPE,
                                     env=dict(os.environ, PYTHONPATH=str(agent_dir)))
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def get(self, keep: bool, gzip: bool) -> None:
        headers = {"Accept-Encoding": "gzip"} if gzip else {"Accept-Encoding": "identity"}
        if not keep:
            headers["Connection"] = "close"
        self.conn.request("GET", "/metrics", headers=headers)
        resp = self.conn.getresponse()
        resp.read()
        assert resp.status == 200
        if not keep:
            self.conn.close()

    def stop(self) -> None:
        self.conn.close()
        self.proc.kill()
        self.proc.wait()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--other", type=Path, required=True, help="the other agent directory")
    p.add_argument("--python", default=sys.executable, help="interpreter for both servers")
    p.add_argument("--requests", type=int, default=3000, help="requests per kind")
    p.add_argument("--idle", type=float, default=20.0, help="seconds measured idle")
    args = p.parse_args()
    body = REPO / ".bench-exposition.prom"
    body.write_bytes(subprocess.run(
        [args.python, "-m", "boardfleet_agent", "--sysroot",
         str(REPO / "tests" / "fixtures" / "generic"), "--once"], check=True,
        capture_output=True, env=dict(os.environ, PYTHONPATH=str(REPO / "agent"))).stdout)
    servers = [Server("this checkout", args.python, REPO / "agent", body),
               Server(str(args.other), args.python, args.other, body)]
    print("load average %s; body %d bytes; %s"
          % (os.getloadavg(), body.stat().st_size, args.python))
    rows: Dict[str, List[str]] = {}
    try:
        time.sleep(1.0)
        before = [cpu_ns(s.proc.pid) for s in servers]
        time.sleep(args.idle)
        rows["idle CPU (ms per minute)"] = [
            "%.2f" % ((cpu_ns(s.proc.pid) - b) / 1e6 * 60 / args.idle)
            for s, b in zip(servers, before, strict=True)]
        for label, keep, gzip in (("kept-alive GET", True, False),
                                  ("kept-alive GET, gzip", True, True),
                                  ("GET on a new connection", False, False)):
            before = [cpu_ticks_ns(s.proc.pid) for s in servers]
            for _ in range(args.requests):
                for s in servers:
                    s.get(keep, gzip)
            rows["%s (us CPU each)" % label] = [
                "%.0f" % ((cpu_ticks_ns(s.proc.pid) - b) / 1e3 / args.requests)
                for s, b in zip(servers, before, strict=True)]
        rows["RSS after (MiB)"] = ["%.1f" % rss_mib(s.proc.pid) for s in servers]
    finally:
        for s in servers:
            s.stop()
        body.unlink()
    print("%-36s %16s %16s %8s" % ("", "this", "other", "ratio"))
    for label, (mine, other) in rows.items():
        ratio = "%.2f" % (float(mine) / float(other)) if float(other) else "n/a"
        print("%-36s %16s %16s %8s" % (label, mine, other, ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
