"""Static checks of prometheus/: promtool check/test, the generated rules' drift, and
the Alertmanager config."""

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from support.paths import REPO
from support.promtool import promtool

from boardfleet.rules import ALERTS_FILE, load_thresholds, render

PROM = REPO / "prometheus"


def _run(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=PROM)


def test_promtool_check_config() -> None:
    r = _run(promtool(), "check", "config", "prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 2 rule files found" in r.stdout


def test_promtool_check_rules() -> None:
    r = _run(promtool(), "check", "rules", *sorted(str(p) for p in PROM.glob("rules/*.yml")))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == 2


def test_promtool_unit_tests() -> None:
    files = sorted(str(p) for p in PROM.glob("tests/*.yml"))
    assert len(files) >= 2
    # Multi-day soak timelines: about a minute on an idle machine, several on a loaded
    # one; the timeout only guards against a hang.
    r = _run(promtool(), "test", "rules", *files, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


def test_generated_rules_match_thresholds() -> None:
    """Like kubernetes-mixin: the committed rule files are exactly what the generator
    writes from thresholds.yml (run `boardfleet rules generate` after editing it)."""
    for name, text in render(load_thresholds(PROM / "thresholds.yml")).items():
        committed = (PROM / "rules" / name).read_text()
        assert committed == text, "prometheus/rules/%s is stale: run 'boardfleet rules " \
                                  "generate'" % name


def test_every_alert_has_unit_tests_and_a_runbook_section() -> None:
    rules = yaml.safe_load((PROM / "rules" / ALERTS_FILE).read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = "".join(p.read_text() for p in PROM.glob("tests/*.yml"))
    tested = set(re.findall(r'alertname(?:: |=\\?")(\w+)', tests))
    assert alerts <= tested, "no promtool test for %s" % (alerts - tested)
    headings = re.findall(r"^## (\w+)$", (PROM / "RUNBOOK.md").read_text(), re.M)
    assert alerts <= set(headings), "RUNBOOK.md lacks sections for %s" % (alerts - set(headings))
    for g in rules["groups"]:
        for r in g["rules"]:
            links = r["annotations"]
            assert links["runbook_url"].startswith(("http://", "https://"))
            assert links["runbook_url"].endswith("#" + r["alert"].lower())
            assert links["dashboard_url"].endswith("?var-board={{ $labels.board }}")
            assert set(links) == {"summary", "description", "runbook_url", "dashboard_url"}
            assert r["labels"]["severity"] in ("warning", "critical")


def test_every_alert_names_its_target() -> None:
    """Alerts keep instance and job (and board), so an unlabelled target is named too."""
    t = load_thresholds(PROM / "thresholds.yml")
    assert {"board", "instance", "job"} <= set(t["board_labels"])
    rules = yaml.safe_load((PROM / "rules" / ALERTS_FILE).read_text())
    for r in (r for g in rules["groups"] for r in g["rules"]):
        if "by (" in r["expr"]:
            assert "by (board, instance, job" in r["expr"], r["alert"]


def test_soak_timelines_are_generated() -> None:
    """prometheus/tests/soak*.yml are what tests/support/soak_timelines.py writes."""
    from support.soak_timelines import files

    for path, text in files().items():
        assert path.read_text() == text, "%s is stale: run python " \
            "tests/support/soak_timelines.py" % path.name


def test_alertmanager_config_is_valid() -> None:
    amtool = shutil.which("amtool") or "/usr/bin/amtool"
    assert Path(amtool).exists(), "amtool comes with Debian's prometheus-alertmanager"
    r = _run(amtool, "check-config", "alertmanager.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 inhibit rules" in r.stdout


def test_rules_generate_check_flags_stale_files(tmp_path: Path) -> None:
    from boardfleet.cli import main

    args = ["rules", "generate", "-t", str(PROM / "thresholds.yml"), "-o", str(tmp_path)]
    assert main([*args, "--check"]) == 1
    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    assert (tmp_path / ALERTS_FILE).read_text() == (PROM / "rules" / ALERTS_FILE).read_text()
