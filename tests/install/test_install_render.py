"""Service files, bundle determinism, probe parsing and shell quoting, without boards."""

import shutil
import subprocess
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.paths import FIXTURES

from boardfleet import board_probe, bundle
from boardfleet.installer import Layout, render_openrc, render_systemd, render_sysv
from boardfleet.inventory import Board, InventoryError

PY = "/usr/bin/python3"
# Any one-line text a prefix might hold, shell metacharacters included.
paths = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1,
                max_size=40).map(lambda s: "/tmp/" + s)


def test_bundle_is_deterministic_and_runs_without_site_packages(tmp_path):
    data = bundle.build()
    assert bundle.sha256(data) == bundle.sha256(bundle.build())
    path = tmp_path / "agent.pyz"
    bundle.write(str(path), data)
    with zipfile.ZipFile(path) as zf:
        tops = {name.split("/")[0] for name in zf.namelist()}
    # Only what runs on a board: the agent renders its exposition itself.
    assert tops == {"__main__.py", "boardfleet_agent", "tomli"}
    # -I -S: no site-packages, so everything the agent imports comes from the bundle.
    out = subprocess.run([PY, "-I", "-S", str(path), "--list-collectors"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "cpu" in out.stdout, out.stderr
    out = subprocess.run([PY, "-I", "-S", str(path), "--once", "--platform", "generic",
                          "--sysroot", str(FIXTURES / "generic")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "board_cpu_seconds_total" in out.stdout, out.stderr


def test_systemd_unit_restarts_always_and_verifies(tmp_path):
    lay = Layout("/", "systemd")
    unit = render_systemd(lay, PY)
    assert ('ExecStart="/usr/bin/python3" "/opt/boardfleet/agent.pyz" "--config" '
            '"/etc/boardfleet/agent.toml"') in unit.splitlines()
    for line in ("Restart=always", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 'Environment="MALLOC_ARENA_MAX=1"'):
        assert line in unit.splitlines()
    if shutil.which("systemd-analyze"):
        path = tmp_path / "boardfleet-agent.service"
        path.write_text(unit)
        r = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                           text=True, timeout=60)
        assert "boardfleet-agent.service" not in r.stderr, r.stderr


def test_openrc_script_is_supervised():
    text = render_openrc(Layout("/", "openrc"), PY)
    assert text.startswith("#!/sbin/openrc-run\n")
    assert "supervisor=supervise-daemon" in text and "respawn_max=0" in text
    assert "command_args='/opt/boardfleet/agent.pyz --config /etc/boardfleet/agent.toml'" \
        in text
    assert "supervise_daemon_args='--env MALLOC_ARENA_MAX=1'" in text.splitlines()
    assert subprocess.run(["sh", "-n"], input=text, text=True, timeout=10).returncode == 0


@settings(max_examples=40, deadline=None)
@given(prefix=paths)
def test_sysv_script_quotes_any_prefix(prefix):
    lay = Layout(prefix, "sysv")
    script = render_sysv(lay, PY)
    head = script.split("\nrunning()")[0]
    # Evaluating the assignments yields the exact paths and runs nothing else.
    r = subprocess.run(["sh", "-c", head + '\nprintf "%s\\n" "$BUNDLE" "$PIDFILE"'
                        ' "$(env | grep ^MALLOC_ARENA_MAX=)"'],
                       capture_output=True, text=True, timeout=10)
    assert r.stdout.splitlines() == [lay.bundle, lay.pidfile, "MALLOC_ARENA_MAX=1"]
    assert subprocess.run(["sh", "-n"], input=script, text=True, timeout=10).returncode == 0


@given(st.text(max_size=400))
def test_probe_parse_never_crashes(text):
    p = board_probe.parse(text)
    assert p.init in board_probe.INITS and p.platform in board_probe.PLATFORMS
    assert p.python == "" or p.python.startswith("/")


def test_probe_parse_reads_a_board():
    p = board_probe.parse("arch=aarch64\nos=Buildroot 2020.02\ninit=sysv\npython=/usr/bin/python3\n"
                          "python_version=3.8.10\nplatform=hisi\ndebugfs=yes\nroot=yes\n")
    assert (p.arch, p.init, p.platform, p.debugfs, p.root) == ("aarch64", "sysv", "hisi",
                                                                True, True)
    assert p.python_ok()
    assert not board_probe.parse("python=/usr/bin/python3\npython_version=3.7.3\n").python_ok()


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=3))
def test_board_install_settings_validate_or_refuse(install):
    try:
        Board(name="b", host="h", install=install).validate()
    except InventoryError:
        return
    assert set(install) <= {"prefix", "listen"}


@pytest.mark.parametrize("init,name", [("sysv", "etc/init.d/S99boardfleet-agent"),
                                       ("openrc", "etc/init.d/boardfleet-agent"),
                                       ("systemd", "etc/systemd/system/boardfleet-agent.service")])
def test_layout_service_paths(init, name):
    assert Layout("/p", init).service == "/p/" + name
