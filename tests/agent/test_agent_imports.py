"""What the agent is made of: every collector module listed, nothing a board does not need
imported (each unneeded import is RSS on a 64 MB board, issue 18)."""

import json
import subprocess
import sys
from pathlib import Path

from support.paths import FIXTURES, REPO

from boardfleet_agent import collectors
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


def test_every_collector_module_is_catalogued() -> None:
    files = sorted(p.stem for p in Path(collectors.__file__).parent.glob("*.py")
                   if p.stem != "__init__")
    assert sorted(collectors.CATALOG) == files
    for name, cls in all_collectors().items():
        assert (cls.name, cls.help, cls.platforms) == (name, *collectors.CATALOG[name][:2])


def test_a_plain_agent_imports_nothing_it_does_not_use() -> None:
    code = ("import json, sys\n"
            "from boardfleet_agent.cli import main\n"
            "rc = main(['--once', '--sysroot', %r])\n"
            "sys.stderr.write(json.dumps([rc, sorted(sys.modules)]))\n"
            % str(FIXTURES / "generic"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=str(REPO / "agent"))
    rc, modules = json.loads(r.stderr.splitlines()[-1])
    assert rc == 0 and "board_cpu_seconds_total" in r.stdout
    assert [m for m in NOT_ON_A_PLAIN_BOARD if m in modules] == []
    # Only the collectors a generic board runs (the vendor ones cost about 0.35 MiB).
    ran = sorted(m.rsplit(".", 1)[1] for m in modules if m.startswith(COLLECTORS))
    assert ran == [n for n, e in sorted(collectors.CATALOG.items())
                   if not e.platforms and e.default_enabled]
