"""The agent really runs on Python 3.8 (Ubuntu 20.04 boards), not just lints as 3.8.

Runs ``--once`` on every fixture board under a Python 3.8 interpreter with only the
bundle's pinned wheels (tomli; the ``py38_path`` fixture, conftest.py), and compares with
the golden files.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.agent import stable_lines
from support.paths import BOARDS, FIXTURES, GOLDEN, REPO


@pytest.mark.parametrize("board", BOARDS)
def test_once_on_python38_matches_golden(py38_path: str, board: str) -> None:
    python, site = py38_path.split(os.pathsep)
    env = dict(os.environ, PYTHONPATH=site + os.pathsep + str(REPO / "agent"))
    r = subprocess.run([python, "-m", "boardfleet_agent", "--sysroot",
                        str(FIXTURES / board), "--once"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    golden = Path(GOLDEN / ("%s.prom" % board)).read_text()
    assert _values_normalised(stable_lines(r.stdout)) == _values_normalised(golden)


def _values_normalised(text: str) -> list:
    """Sample values as floats: older prometheus-client prints 1.7064e+010 for 1.7064e+10."""
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            out.append(line)
        else:
            series, _, value = line.rpartition(" ")
            out.append((series, float(value)))
    return out


def test_install_bundle_runs_on_python38(py38_path: str, tmp_path) -> None:
    """The zipapp `boardfleet agent install` pushes runs on a bare 3.8 (no site-packages)."""
    from boardfleet import bundle

    python = py38_path.split(os.pathsep)[0]
    pyz = tmp_path / "agent.pyz"
    bundle.write(str(pyz), bundle.build())
    r = subprocess.run([python, "-I", "-S", str(pyz), "--sysroot", str(FIXTURES / "x5"),
                        "--once"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert 'board_info{agent_version=' in r.stdout
    assert "board_ion_heap_used_bytes" in r.stdout


@pytest.mark.parametrize("text, error", [
    ('sysroot = "C:\\\\"  # c\n[collectors.processes]\nnames = ["sshd"]\n', None),
    ("x = 01\n", "line 1"),
    ("[statsd]\n[statsd]\n", "line 2"),
    ("[inferense]\ntags = []\n", "inferense: unknown table"),
])
def test_config_files_read_alike_on_python38_and_311(py38_path: str, tmp_path, text: str,
                                                     error: str | None) -> None:
    """On 3.8 the bundle's tomli reads the config, on 3.11 tomllib: the same verdicts."""
    python, site = py38_path.split(os.pathsep)
    env = dict(os.environ, PYTHONPATH=site + os.pathsep + str(REPO / "agent"))
    conf = tmp_path / "agent.toml"
    conf.write_text(text)
    runs = [subprocess.run([py, "-m", "boardfleet_agent", "--config", str(conf),
                            "--sysroot", str(FIXTURES / "generic"), "--once"],
                           capture_output=True, text=True, timeout=60, env=env)
            for py in (python, sys.executable)]
    for r in runs:
        assert r.returncode == (2 if error else 0), r.stderr
        assert error is None or error in r.stderr
    assert runs[0].stderr == runs[1].stderr
    if error is None:
        assert 'board_process_instances{process="sshd"}' in runs[0].stdout
