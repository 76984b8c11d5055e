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


# Runs a bundle as ``python3 agent.pyz ARGS`` does, then tells where the agent came from.
WHERE = """\
import runpy, sys
sys.argv = [sys.argv[1], "--version"]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit:
    pass
print(sys.modules["boardfleet_agent.cli"].__file__)
"""


def test_bundle_runs_from_bytecode_prepared_for_its_python(tmp_path):
    path = tmp_path / "agent.pyz"
    bundle.write(str(path), bundle.build())
    tag = subprocess.run([PY, "-c", "import sys; print(sys.implementation.cache_tag)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    compiled = tmp_path / ("agent.pyz." + tag)

    def where() -> str:
        return subprocess.run([PY, "-I", "-S", "-c", WHERE, str(path)], capture_output=True,
                              text=True, timeout=60, check=True).stdout.splitlines()[-1]

    assert where() == str(path / "boardfleet_agent" / "cli.py")  # nothing prepared: the zip
    killed = tmp_path / ("agent.pyz.%s.new%d" % (tag, 2**22 + 1))  # a prepare killed midway
    (killed / "boardfleet_agent").mkdir(parents=True)
    r = subprocess.run([PY, "-I", "-S", str(path), "--prepare-bytecode"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (compiled / "boardfleet_agent" / "__pycache__" / ("cli.%s.pyc" % tag)).is_file()
    assert where() == str(compiled / "boardfleet_agent" / "cli.py")
    # A bundle replaced (a new size or mtime) runs from its zip until prepared again.
    path.write_bytes(path.read_bytes() + b"\0")
    assert where() == str(path / "boardfleet_agent" / "cli.py")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.pyz", compiled.name]


def test_bytecode_that_cannot_be_prepared_leaves_the_zip_to_run(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(bundle.package_dir("boardfleet_agent"), src,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (src / "broken.py").write_text("def broken(:\n")  # a module that does not compile
    path = tmp_path / "agent.pyz"
    bundle.write(str(path), bundle.build({"boardfleet_agent": src}))
    r = subprocess.run([PY, "-I", "-S", str(path), "--prepare-bytecode"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1 and "bytecode not prepared" in r.stderr.splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.pyz", "src"]
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
