"""Debian's Prometheus, run as its own unprivileged user, scrapes what boardfleet registers.

Debian's unit runs ``prometheus`` as user ``prometheus``; the committed
``prometheus/prometheus.yml`` reads file-SD targets from ``prometheus/targets/``. The
test lays out a project directory the way a lab checkout looks (0755), then, under
umask 077 (a cautious admin), registers one namespace board with ``agent install`` and
one local agent with ``inventory add``. Prometheus, started with ``runuser -u
prometheus``, must scrape both: every file it reads was written readable.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from support.agent import served_agent
from support.boards import BoardSpec, boards
from support.files import strict_umask  # noqa: F401 (fixture)
from support.net import free_port, wait_http
from support.paths import FIXTURES, REPO

from boardfleet import bundle
from boardfleet.cli import main

pytestmark = [pytest.mark.netns, pytest.mark.slow]
USER = "prometheus"  # created by Debian's prometheus package, like the unit's User=
DEADLINE = 60.0  # generous "did not hang" bound, not a timing assertion


def prometheus_config() -> dict:
    """The committed config: the agent job with its relative file-SD path, 1s intervals."""
    cfg = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    cfg.pop("rule_files", None)
    cfg.pop("alerting", None)
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "boardfleet-agent")
    job.pop("http_sd_configs", None)  # no fleet service in this test
    for sd in job["file_sd_configs"]:
        sd["refresh_interval"] = "1s"
        assert any(f.startswith("targets/") for f in sd["files"]), sd
    cfg["scrape_configs"] = [job]
    return cfg


@pytest.fixture
def project():
    """A lab checkout: /tmp/...-project/{boards.yml, prometheus/} readable by all."""
    base = Path(tempfile.mkdtemp(prefix="bf-unpriv-"))
    base.chmod(0o755)
    (base / "prometheus").mkdir()
    (base / "prometheus").chmod(0o755)  # a checkout, whatever the test's umask
    (base / "prometheus" / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config()))
    (base / "prometheus" / "prometheus.yml").chmod(0o644)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_as_prometheus(project: Path) -> tuple[str, subprocess.Popen]:
    data = project / "prometheus-data"
    data.mkdir()
    shutil.chown(data, USER, USER)
    port = free_port()
    log = open(project / "prometheus.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        ["runuser", "-u", USER, "--", "/usr/bin/prometheus",
         "--config.file", str(project / "prometheus" / "prometheus.yml"),
         "--storage.tsdb.path", str(data), "--web.listen-address", "127.0.0.1:%d" % port],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    log.close()
    return "http://127.0.0.1:%d" % port, proc


def up_by_board(url: str) -> dict[str, str]:
    import json
    import urllib.parse
    import urllib.request

    q = urllib.parse.urlencode({"query": 'up{job="boardfleet-agent"}'})
    with urllib.request.urlopen(url + "/api/v1/query?" + q, timeout=5) as r:
        result = json.loads(r.read())["data"]["result"]
    return {s["metric"].get("board", "?"): s["value"][1] for s in result}


@pytest.mark.usefixtures("strict_umask")
def test_debian_prometheus_as_its_user_scrapes_registered_boards(project: Path, capsys):
    inventory = project / "boards.yml"
    targets = project / "prometheus" / "targets"
    pyz = project / "agent.pyz"
    bundle.write(str(pyz), bundle.build())
    with boards([BoardSpec("ns0")]) as (b,), \
            served_agent(str(FIXTURES / "generic")) as (local, _agent):
        assert main(["agent", "install", "root@%s" % b.address, "--name", "ns0",
                     "-i", str(inventory), "--targets-dir", str(targets),
                     "--identity", str(b.client_key), "--accept-new-host-key",
                     "--bundle", str(pyz), "--prefix", str(b.prefix),
                     "--sysroot", str(b.sysroot), "--listen", "%s:9776" % b.address,
                     "--health-timeout", "8"]) == 0, capsys.readouterr().out
        port = local.rsplit(":", 1)[1]
        assert main(["inventory", "-i", str(inventory), "--targets-dir", str(targets),
                     "add", "local0", "127.0.0.1", "--agent-port", port,
                     "--label", "rack=bench"]) == 0
        for path, want in ((targets, 0o755), (targets / "boards.json", 0o644),
                           (project / "known_hosts", 0o644)):
            assert path.stat().st_mode & 0o777 == want, path

        url, prom = run_as_prometheus(project)
        try:
            wait_http(url + "/-/ready", timeout=30)
            deadline = time.monotonic() + DEADLINE
            up: dict[str, str] = {}
            while time.monotonic() < deadline and up != {"ns0": "1", "local0": "1"}:
                up = up_by_board(url)
                time.sleep(0.5)
            owner = subprocess.run(["ps", "-o", "user=", "--ppid", str(prom.pid)],
                                   capture_output=True, text=True, timeout=10).stdout.split()
        finally:
            os.killpg(prom.pid, signal.SIGTERM)
            try:
                prom.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(prom.pid, signal.SIGKILL)
                prom.wait()
        log = (project / "prometheus.log").read_text(errors="replace")
        assert owner == [USER], owner
        assert "permission denied" not in log.lower(), log[-3000:]
        assert up == {"ns0": "1", "local0": "1"}, (up, log[-3000:])
