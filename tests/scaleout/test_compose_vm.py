"""docker-compose.yml's ``victoriametrics`` profile: valid, pinned to the version the
tests run, and wired like ``boardfleet stack up --tsdb victoriametrics``."""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from support.paths import REPO

CLI = [sys.executable, "-c", "import sys; from boardfleet.cli import main; sys.exit(main())"]
PROFILE = "victoriametrics"
SERVICES = {"victoriametrics", "vmagent-0", "vmagent-1", "vmalert-rules", "vmalert"}


@pytest.fixture(scope="module")
def services() -> Dict[str, Any]:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose not found: install Debian's 'docker-compose' (scripts/setup)"
    r = subprocess.run([exe, "-f", str(REPO / "docker-compose.yml"), "--profile", PROFILE,
                        "config"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)["services"]


def _flags(svc: Dict[str, Any]) -> Dict[str, str]:
    return dict(a.lstrip("-").split("=", 1) for a in svc["command"] if a.startswith("-"))


def _debian_version() -> str:
    """Upstream version of the installed victoria-metrics package (its -version is empty)."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "victoria-metrics"],
                         capture_output=True, text=True, timeout=30).stdout
    match = re.match(r"(\d+\.\d+\.\d+)", out)
    assert match, "victoria-metrics not installed (scripts/setup): %r" % out
    return match.group(1)


def test_profile_services_are_pinned_to_the_tested_version(services: Dict[str, Any]) -> None:
    profiled = {n for n, s in services.items() if PROFILE in s.get("profiles", [])}
    assert profiled == SERVICES
    version = _debian_version()
    for name in SERVICES - {"vmalert-rules"}:
        assert services[name]["image"].endswith(":v%s" % version), services[name]["image"]


def test_shards_split_the_boards(services: Dict[str, Any]) -> None:
    shards: List[Dict[str, str]] = [_flags(services["vmagent-%d" % i]) for i in (0, 1)]
    assert {s["promscrape.cluster.memberNum"] for s in shards} == {"0", "1"}
    assert {s["promscrape.cluster.membersCount"] for s in shards} == {"2"}
    assert len({s["httpListenAddr"] for s in shards}) == 2  # one network namespace
    vm = _flags(services["victoriametrics"])
    prom = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    assert vm["dedup.minScrapeInterval"] == prom["global"]["scrape_interval"]
    for s in shards:
        assert s["remoteWrite.url"] == "http://127.0.0.1:%s/api/v1/write" % (
            vm["httpListenAddr"].rsplit(":", 1)[1])
        assert s["promscrape.config"] == "/etc/prometheus/prometheus.yml"


def test_vmalert_reads_the_converted_rules_and_notifies_alertmanager(
        services: Dict[str, Any]) -> None:
    alert = _flags(services["vmalert"])
    assert alert["notifier.url"] == "http://127.0.0.1:9093"
    prom = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    assert alert["evaluationInterval"] == prom["global"]["evaluation_interval"]
    rules = services["vmalert-rules"]
    assert rules["command"][:2] == ["rules", "vmalert"]
    out = rules["command"][rules["command"].index("--out") + 1]
    assert alert["rule"] == out + "/*.yml"


def test_converted_rules_pass_vmalert_dry_run(tmp_path: Path) -> None:
    """What the one-shot service runs (``boardfleet rules vmalert``) is what Debian's
    vmalert accepts; the generated rules as they are, it refuses (keep_firing_for)."""
    r = subprocess.run([*CLI, "rules", "vmalert", "-r", str(REPO / "prometheus" / "rules"),
                        "-o", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    files = sorted(tmp_path.glob("*.yml"))
    assert [f.name for f in files] == sorted(
        f.name for f in (REPO / "prometheus" / "rules").glob("*.yml"))
    for rules, ok in ((files, True), ([REPO / "prometheus" / "rules" /
                                       "boardfleet-alerts.yml"], False)):
        dry = subprocess.run(["vmalert", *("-rule=%s" % f for f in rules), "-dryRun",
                              "-datasource.url=http://127.0.0.1:1"],
                             capture_output=True, text=True, timeout=60)
        assert (dry.returncode == 0) == ok, dry.stdout[-2000:] + dry.stderr[-2000:]
    missing = subprocess.run([*CLI, "rules", "vmalert", "-r", str(tmp_path / "none"), "-o",
                              str(tmp_path / "out")], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2 and "no rule files" in missing.stderr
