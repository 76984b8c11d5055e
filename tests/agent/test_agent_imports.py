"""What the agent is made of: every collector module listed, nothing a board does not need
imported (each unneeded import is RSS on a 64 MB board, issue 18)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import FIXTURES, REPO

from boardfleet_agent import collectors, inference
from boardfleet_agent.app import Agent
from boardfleet_agent.config import AgentConfig, ConfigError
from boardfleet_agent.registry import all_collectors

# Modules a plain agent (no TLS, no auth, no vendor tools) must not load, and what each
# would cost: prometheus_client about 12 MiB, ssl 5, hashlib 3.7, http.server (with
# http.client, socketserver, email) 2-3 in the running agent, inspect (pulled by
# pkgutil.iter_modules) 0.9, logging with traceback 0.9 (3.11) and 0.7 (3.8), shutil
# (argparse's terminal width, with bz2 and lzma) 0.4 on 3.11, subprocess 0.5, base64
# (basic auth only) 0.07.
NOT_ON_A_PLAIN_BOARD = ("prometheus_client", "ssl", "hashlib", "inspect", "pkgutil",
                        "subprocess", "http.server", "http.client", "socketserver", "email",
                        "logging", "traceback", "shutil", "base64")
COLLECTORS = "boardfleet_agent.collectors."
PIPELINE = "boardfleet_agent.inference.pipeline"


def test_every_collector_module_is_catalogued() -> None:
    files = sorted(p.stem for p in Path(collectors.__file__).parent.glob("*.py")
                   if p.stem != "__init__")
    assert sorted(collectors.CATALOG) == files
    for name, cls in all_collectors().items():
        assert (cls.name, cls.help, cls.platforms) == (name, *collectors.CATALOG[name][:2])


def modules_of_one_scrape(*args: str) -> list[str]:
    """The modules an agent loaded to serve one scrape of the generic board."""
    code = ("import json, sys\n"
            "from boardfleet_agent.cli import main\n"
            "rc = main(['--once', '--sysroot', %r, *%r])\n"
            "sys.stderr.write(json.dumps([rc, sorted(sys.modules)]))\n"
            % (str(FIXTURES / "generic"), args))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=str(REPO / "agent"))
    rc, modules = json.loads(r.stderr.splitlines()[-1])
    assert rc == 0 and "board_cpu_seconds_total" in r.stdout
    return modules


def test_a_plain_agent_imports_nothing_it_does_not_use() -> None:
    modules = modules_of_one_scrape()
    assert [m for m in NOT_ON_A_PLAIN_BOARD if m in modules] == []
    # Only the collectors a generic board runs (the vendor ones cost about 0.35 MiB).
    ran = sorted(m.rsplit(".", 1)[1] for m in modules if m.startswith(COLLECTORS))
    assert ran == [n for n, e in sorted(collectors.CATALOG.items())
                   if not e.platforms and e.default_enabled]


def test_the_push_pipeline_is_imported_only_when_configured() -> None:
    assert PIPELINE in modules_of_one_scrape()  # StatsD is on by default
    assert [m for m in modules_of_one_scrape("--statsd-listen", "off")
            if m.startswith("boardfleet_agent.inference.")] == []


@pytest.mark.parametrize(("sections", "wanted"), [
    ({}, True),
    ({"statsd": {"listen": "off"}}, False),
    ({"statsd": {"listen": "off"}, "logtail": {"poll_interval": 1.0}}, False),
    ({"statsd": {"listen": "off"}, "logtail": {"yolo": {"path": "/var/log/y.log"}}}, True),
    ({"statsd": {"listen": "127.0.0.1:9125"}}, True),
])
def test_the_pipeline_is_wanted_for_statsd_or_a_log_tail(sections: dict, wanted: bool) -> None:
    assert inference.wanted(sections) is wanted


def test_a_collector_disabled_in_the_config_file_is_not_imported(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("[collectors.processes]\nenabled = false\n"
                      "[collectors.mmz]\nenabled = false\ninterval = 30\n")
    modules = modules_of_one_scrape("--config", str(config))
    assert COLLECTORS + "cpu" in modules
    assert [m for m in modules if m in (COLLECTORS + "processes", COLLECTORS + "mmz")] == []


def test_a_bad_inference_table_is_told_with_statsd_off() -> None:
    cfg = AgentConfig()
    cfg.sysroot = str(FIXTURES / "generic")
    cfg.sections["statsd"] = {"listen": "off"}
    cfg.sections["inference"] = {"tags": ["model"]}
    with pytest.raises(ConfigError, match=r"inference\.tags"):
        Agent(cfg)
