"""`boardfleet agent install` when a board dies mid-install or the user presses Ctrl-C.

Two namespace boards: ``ok0`` and ``dies0``. On ``dies0`` the ``chmod`` that follows
the first upload is replaced: it takes the board's network link down (the board
"dies": no RST, packets vanish) or just hangs. The fleet run must notice the dead
board in seconds through SSH/TCP keepalive, report it alone with its step, finish and
register the healthy board; Ctrl-C must end the run at once with what finished
recorded. Bounds below are generous "did not hang" limits, not timings.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support.boards import BoardSpec, FakeBoard, boards

from boardfleet import bundle

pytestmark = [pytest.mark.netns, pytest.mark.slow]
CLI = [sys.executable, "-c", "import sys; from boardfleet.cli import main; sys.exit(main())"]


def board_link(board: FakeBoard) -> str:
    out = board.netns_exec("ip", "-o", "link", "show").stdout
    return next(ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines()
                if ": lo:" not in ln)


def replace_chmod(board: FakeBoard, body: str) -> None:
    chmod = board.bin_dir / "chmod"
    chmod.unlink()
    chmod.write_text("#!/bin/sh\n" + body)
    chmod.chmod(0o755)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    work = tmp_path_factory.mktemp("dies")
    with boards([BoardSpec("ok0"), BoardSpec("dies0")]) as bs:
        inv = {"boards": [{
            "name": b.name, "host": b.address, "sysroot": str(b.sysroot),
            "install": {"prefix": str(b.prefix), "listen": "%s:9776" % b.address}}
            for b in bs]}
        (work / "boards.yml").write_text(yaml.safe_dump(inv))
        (work / "known_hosts").write_text("".join(b.known_hosts_line + "\n" for b in bs))
        bundle.write(str(work / "agent.pyz"), bundle.build())
        yield work, bs


def start(work: Path, key: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, "agent", "install", "-i", str(work / "boards.yml"), "--identity", str(key),
         "--targets-dir", str(work / "targets"), "--bundle", str(work / "agent.pyz"),
         "--health-timeout", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_board_dying_mid_install_fails_alone(fleet):
    work, (ok, dies) = fleet
    link = board_link(dies)
    replace_chmod(dies, "/usr/sbin/ip link set dev %s down\nexec %s/sleep 600\n"
                  % (link, dies.bin_dir))
    proc = start(work, ok.client_key)
    try:
        out, _ = proc.communicate(timeout=120)  # before the fix: 300 s upload timeout
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        dies.netns_exec("ip", "link", "set", "dev", link, "up")
    assert proc.returncode == 1, out
    assert "] ok0: installed" in out and "] dies0: failed (upload agent.pyz)" in out, out
    assert "dies0 failed at step upload agent.pyz: connection to %s lost" % dies.address \
        in out, out
    assert "2 boards, 1 ok, 1 failed" in out
    sd = json.loads((work / "targets" / "boards.json").read_text())
    assert {g["labels"]["board"] for g in sd} == {"ok0", "dies0"}  # dies0: listed before


def test_ctrl_c_stops_at_once_and_records_what_finished(fleet):
    work, (ok, dies) = fleet
    replace_chmod(dies, "exec %s/sleep 600\n" % dies.bin_dir)  # hangs, link stays up
    (work / "targets" / "boards.json").unlink()
    proc = start(work, ok.client_key)
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "] ok0: " in line:
                break
        time.sleep(1)  # dies0 is now inside its hanging upload
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = "".join(lines) + rest
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "interrupted: 1 of 2 boards finished" in out, out
    assert "dies0 failed at step interrupted: stopped by Ctrl-C while in progress" in out
    sd = json.loads((work / "targets" / "boards.json").read_text())
    assert "ok0" in {g["labels"]["board"] for g in sd}


def restore_chmod(board: FakeBoard) -> None:
    chmod = board.bin_dir / "chmod"
    chmod.unlink()
    chmod.symlink_to("/usr/bin/busybox")


def install(work: Path, key: Path, target: FakeBoard, *extra: str) -> tuple[int, str]:
    r = subprocess.run(
        [*CLI, "agent", "install", "root@%s" % target.address, "--name", target.name,
         "-i", str(work / "boards.yml"), "--identity", str(key), "--targets-dir",
         str(work / "targets"), "--health-timeout", "8", *extra],
        capture_output=True, text=True, timeout=180)
    return r.returncode, r.stdout + r.stderr


def built(work: Path, version: str, broken: bool = False) -> str:
    from test_agent_install import built_bundle

    path = work / (version + ".pyz")
    return str(path if path.exists() else built_bundle(work, version, broken))


def test_failed_first_install_is_removed(fleet):
    work, (ok, dies) = fleet
    restore_chmod(dies)
    code, out = install(work, ok.client_key, dies, "--bundle", built(work, "0.0.7", True))
    assert code == 1 and "the failed first install was removed" in out, out
    assert [p for p in dies.prefix.rglob("*") if p.is_file()] == []
    procs = dies.netns_exec("ip", "netns", "pids", dies.netns).stdout.split()
    cmdlines = []
    for pid in procs:
        with contextlib.suppress(FileNotFoundError):  # exited meanwhile
            cmdlines.append(Path("/proc/%s/cmdline" % pid).read_bytes())
    assert not [c for c in cmdlines if b"agent.pyz\x00--config" in c]  # no agent runs


def test_no_silent_downgrade(fleet):
    work, (ok, _) = fleet
    old = built(work, "0.0.1")
    code, out = install(work, ok.client_key, ok, "--bundle", old)
    assert code == 1 and "newer than this bundle's 0.0.1; pass --allow-downgrade" in out, out
    assert "step version" in out
    code, out = install(work, ok.client_key, ok, "--bundle", old, "--allow-downgrade")
    assert code == 0 and "ok0: upgraded" in out, out
    assert not (ok.prefix / "opt/boardfleet/agent.pyz.prev").exists()


def test_crash_looping_agent_is_reported(fleet):
    work, (ok, _) = fleet
    init = ok.prefix / "etc/init.d/S99boardfleet-agent"
    assert ok.ssh("%s stop" % init).returncode == 0
    squatter = subprocess.Popen(  # the agent's port is taken: it exits and respawns
        ["ip", "netns", "exec", ok.netns, sys.executable, "-m", "http.server", "--bind",
         ok.address, "9776"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        assert ok.ssh("%s start" % init).returncode == 0
        code, out = install(work, ok.client_key, ok, "--bundle", built(work, "0.0.1"))
    finally:
        squatter.terminate()
        squatter.wait(10)
    assert code == 1 and "crash-looping" in out and "unchanged" not in out, out
    assert "Address already in use" in out or "address already in use" in out.lower(), out


def test_python_gone_never_turns_an_agent_board_agentless(fleet):
    work, (ok, _) = fleet
    python = ok.bin_dir / "python3"
    python.unlink()
    try:
        code, out = install(work, ok.client_key, ok, "--bundle", built(work, "0.0.1"))
    finally:
        python.symlink_to("/usr/bin/python3")
    assert code == 1 and "but the agent is installed at" in out, out
    modes = {b["name"]: b.get("mode", "agent")
             for b in yaml.safe_load((work / "boards.yml").read_text())["boards"]}
    assert modes["ok0"] == "agent"


def test_full_filesystem_refuses_upgrade_before_writing(fleet):
    """A small tmpfs as the board's install root: room for one bundle, not for two.

    It is mounted in the board's own mount namespace (``ip netns exec`` gave sshd one).
    """
    work, (ok, dies) = fleet
    assert dies.sshd is not None
    in_board = ["nsenter", "-t", str(dies.sshd.pid), "-m", "--"]
    current = (work / "agent.pyz").stat().st_size
    size = current + current // 2 + 96 * 1024
    subprocess.run([*in_board, "mount", "-t", "tmpfs", "-o", "size=%d" % size, "bftest-full",
                    str(dies.prefix)], check=True, timeout=30)

    def files() -> list[str]:
        return sorted(dies.ssh("find %s" % dies.prefix).stdout.split())

    try:
        code, out = install(work, ok.client_key, dies, "--bundle", str(work / "agent.pyz"))
        assert code == 0 and "no room for its bytecode" in out, out
        assert "bftest-full" in dies.ssh("df -Pk %s" % dies.prefix).stdout
        before = files()
        code, out = install(work, ok.client_key, dies, "--bundle", built(work, "99.0.0"))
        assert code == 1 and "step space" in out and "nothing was changed" in out, out
        assert files() == before
        init = dies.prefix / "etc/init.d/S99boardfleet-agent"
        assert dies.ssh("%s status" % init).returncode == 0  # the old agent still runs
        dies.ssh("%s stop" % init)
    finally:
        subprocess.run([*in_board, "umount", "-l", str(dies.prefix)], timeout=30)
