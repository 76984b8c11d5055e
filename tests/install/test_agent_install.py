"""`boardfleet agent install|upgrade|uninstall|status` against real sshd boards.

Three fake boards (tests/support/boards.py): two with python3, one without. The tests
run in file order on the same boards: install, re-install, upgrade and rollback,
status, uninstall; host-key refusals need no installed state.
"""

import contextlib
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml
from support.boards import BoardSpec, boards

from boardfleet import bundle
from boardfleet.bundle import package_dir
from boardfleet.cli import main

pytestmark = [pytest.mark.netns, pytest.mark.slow]
# A prefix that would run commands if any remote command were not quoted.
NASTY = "pre fix $(touch INJECTED) ';touch INJECTED2"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    work = tmp_path_factory.mktemp("fleet")
    specs = [BoardSpec("b0"), BoardSpec("b1"), BoardSpec("b2-nopy", python=False)]
    with boards(specs) as bs:
        inv = {"boards": [{
            "name": b.name, "host": b.address, "sysroot": str(b.sysroot),
            "labels": {"rack": "r%d" % i, "owner": "qa", "lab": "ns"},
            "install": {"prefix": str(b.prefix / (NASTY if i == 1 else "")).rstrip("/"),
                        "listen": "%s:9776" % b.address}} for i, b in enumerate(bs)]}
        (work / "boards.yml").write_text(yaml.safe_dump(inv))
        # One bundle file for the whole module: the agent sources may change meanwhile.
        bundle.write(str(work / "agent.pyz"), bundle.build())
        yield work, bs


def cli(work: Path, key: Path, *args: str) -> list[str]:
    if args[0] in ("install", "upgrade") and "--bundle" not in args:
        args = (*args, "--bundle", str(work / "agent.pyz"))
    return ["agent", *args, "-i", str(work / "boards.yml"), "--identity", str(key),
            "--targets-dir", str(work / "targets"), "--health-timeout", "8"]


def scrape(address: str) -> str:
    with urllib.request.urlopen("http://%s:9776/metrics" % address, timeout=5) as r:
        return r.read().decode()


def pids(board) -> str:
    return (board.prefix / (NASTY if board.name == "b1" else "") / "var/run"
            / "boardfleet-agent.pid").read_text()


def test_install_fleet_in_parallel(fleet, capsys):
    work, bs = fleet
    assert main(cli(work, bs[0].client_key, "install", "--accept-new-host-key")) == 0
    out = capsys.readouterr().out
    assert "[3/3]" in out and "3 boards, 3 ok, 0 failed" in out
    assert "b2-nopy has no usable python3: registered for agentless collection" in out
    for b in bs[:2]:
        assert 'agent_version="%s"' % bundle_version() in scrape(b.address)
        # Bytecode prepared for the board's Python, stamped with the bundle it came from.
        opt = b.prefix / (NASTY if b.name == "b1" else "") / "opt/boardfleet"
        st = (opt / "agent.pyz").stat()
        assert [(c / "STAMP").read_text() for c in opt.glob("agent.pyz.cpython-*")] \
            == ["%d %d %d\n" % (st.st_ino, st.st_size, st.st_mtime_ns)]
        # The init script gives the agent its environment (one malloc arena).
        assert [b"MALLOC_ARENA_MAX=1" in Path("/proc/%s/environ" % p).read_bytes()
                for p, cmdline in processes(b) if b"agent.pyz" in cmdline] == [True]
    inv = yaml.safe_load((work / "boards.yml").read_text())
    modes = {b["name"]: b.get("mode", "agent") for b in inv["boards"]}
    assert modes == {"b0": "agent", "b1": "agent", "b2-nopy": "agentless"}
    assert all(b["platform"] == "generic" for b in inv["boards"])
    sd = json.loads((work / "targets" / "boards.json").read_text())
    assert sorted(g["targets"][0] for g in sd) == sorted("%s:9776" % b.address for b in bs[:2])
    assert {g["labels"]["rack"] for g in sd} == {"r0", "r1"}
    assert len((work / "known_hosts").read_text().splitlines()) == 3
    assert not list(Path("/").glob("INJECTED*")) and not list(bs[1].root.rglob("INJECTED*"))
    assert not (bs[2].prefix / "opt").exists()


def processes(board) -> list[tuple[str, bytes]]:
    """(pid, cmdline) of the processes in the board's network namespace."""
    pids = subprocess.run(["ip", "netns", "pids", board.netns], capture_output=True,
                          text=True, timeout=10).stdout.split()
    out = []
    for pid in pids:
        with contextlib.suppress(OSError):  # ended meanwhile
            out.append((pid, Path("/proc/%s/cmdline" % pid).read_bytes()))
    return out


def bundle_version() -> str:
    from boardfleet_agent import __version__

    return __version__


def test_reinstall_changes_nothing(fleet, capsys):
    work, bs = fleet
    before = {b.name: pids(b) for b in bs[:2]}
    assert main(cli(work, bs[0].client_key, "install")) == 0
    out = capsys.readouterr().out
    assert out.count(": unchanged") == 2, out
    assert {b.name: pids(b) for b in bs[:2]} == before


def built_bundle(tmp: Path, version: str, broken: bool = False) -> Path:
    src = tmp / ("agent-" + version)
    shutil.copytree(package_dir("boardfleet_agent"), src,
                    ignore=shutil.ignore_patterns("__pycache__"))
    init = src / "__init__.py"
    init.write_text(init.read_text().replace(bundle_version(), version))
    if broken:
        (src / "cli.py").write_text("def main():\n    raise SystemExit('broken build')\n")
    path = tmp / (version + ".pyz")
    bundle.write(str(path), bundle.build({"boardfleet_agent": src}))
    return path


def test_upgrade_then_rollback(fleet, capsys, tmp_path):
    work, bs = fleet
    good = built_bundle(tmp_path, "9.9.1")
    assert main(cli(work, bs[0].client_key, "upgrade", "--bundle", str(good))) == 0
    assert capsys.readouterr().out.count(": upgraded (changed: agent.pyz)") == 2
    assert all('agent_version="9.9.1"' in scrape(b.address) for b in bs[:2])

    assert main(cli(work, bs[0].client_key, "upgrade", "--bundle", str(good))) == 0
    assert capsys.readouterr().out.count(": unchanged") == 2

    bad = built_bundle(tmp_path, "9.9.2", broken=True)
    assert main(cli(work, bs[0].client_key, "upgrade", "--bundle", str(bad))) == 1
    out = capsys.readouterr().out
    assert out.count("rolled back to the previous bundle") == 2, out
    assert "broken build" in out  # the remote log tail is in the report
    assert all('agent_version="9.9.1"' in scrape(b.address) for b in bs[:2])


def test_status_table(fleet, capsys):
    work, bs = fleet
    assert main(cli(work, bs[0].client_key, "status")) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()[1:]}
    for b in bs[:2]:
        assert "9.9.1" in lines[b.name] and "running/up" in lines[b.name]
    assert "stopped/down" in lines["b2-nopy"]


def test_host_key_changed_is_refused(fleet, capsys):
    work, bs = fleet
    kh = work / "wrong_known_hosts"
    kh.write_text(bs[1].known_hosts_line.replace(bs[1].address, bs[0].address) + "\n")
    target = "root@%s" % bs[0].address
    assert main(cli(work, bs[0].client_key, "status", target, "--known-hosts", str(kh))) == 1
    assert "CHANGED" in capsys.readouterr().out
    args = cli(work, bs[0].client_key, "install", target, "--name", "b0",
               "--host-key-fingerprint", bs[1].host_key_fingerprint)
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "not the pinned %s" % bs[1].host_key_fingerprint in out and "step connect" in out
    assert main(cli(work, bs[0].client_key, "status", target, "--name", "b0",
                    "--host-key-fingerprint", bs[0].host_key_fingerprint)) == 0


def test_uninstall_leaves_nothing(fleet, capsys):
    work, bs = fleet
    assert main(cli(work, bs[0].client_key, "uninstall")) == 0
    out = capsys.readouterr().out
    assert out.count(": uninstalled") == 2
    assert out.count("removed from %s and from the scrape targets" % (work / "boards.yml")) == 2
    # Uninstalled boards are no longer scrape targets; the agentless one stays listed.
    assert json.loads((work / "targets" / "boards.json").read_text()) == []
    assert [b["name"] for b in yaml.safe_load((work / "boards.yml").read_text())["boards"]] \
        == ["b2-nopy"]
    for b in bs:
        assert [p.name for p in b.prefix.iterdir()] == []
        assert not [c for _, c in processes(b) if b"agent.pyz" in c or b"boardfleet" in c]
