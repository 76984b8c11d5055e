"""Fixtures for agentless tests: fake boards, a served fleet service, a real Prometheus."""

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Callable, Dict, Iterator, List, TypeVar

import pytest
import yaml
from support.boards import BoardSpec, FakeBoard, boards
from support.net import free_port, wait_http
from support.paths import REPO

TELNETD = Path(__file__).with_name("telnetd.py")
TOKEN = "s3cret-token-for-tests"
TELNET_PASSWORD = "hunter2-telnet-pw"
WRONG_PASSWORD = "not-the-pw-4711"
# The service's probe timeout: long enough for a probe of a live board on a loaded 2-core
# machine (2 s failed one there), short enough to keep dead-board tests quick.
PROBE_TIMEOUT = 5.0


def write_private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def stop(proc: subprocess.Popen) -> None:
    """Stop a process group this suite started."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def in_netns(netns: str | None, argv: List[str]) -> List[str]:
    return [shutil.which("ip") or "ip", "netns", "exec", netns, *argv] if netns else argv


@contextmanager
def loopback_netns() -> Iterator[str]:
    """A network namespace with only ``lo``: nothing in it can reach another host."""
    name = "bfapi-%d-%04x" % (os.getpid(), random.randrange(0x10000))
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
                       check=True, timeout=30)
        yield name
    finally:
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                              timeout=30).stdout.split()
        for pid in pids:
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "delete", name], timeout=30)


def wait_http_in(netns: str, url: str, timeout: float = 15.0) -> None:
    probe = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)"
    deadline = time.monotonic() + timeout
    while subprocess.run(in_netns(netns, [sys.executable, "-c", probe, url]),
                         capture_output=True, timeout=30).returncode != 0:
        if time.monotonic() > deadline:
            raise TimeoutError("%s did not answer within %.0fs" % (url, timeout))
        time.sleep(0.2)


@contextmanager
def served(inventory: Path, workdir: Path, *extra: str,
           netns: str | None = None) -> Iterator[str]:
    """``boardfleet serve`` on a free loopback port (of ``netns``); yields its base URL."""
    port = free_port()
    log = open(workdir / ("service-%d.log" % port), "wb")  # noqa: SIM115
    proc = subprocess.Popen(in_netns(netns, [
        sys.executable, "-c", "import sys; from boardfleet.cli import main; sys.exit(main())",
        "serve", "--inventory", str(inventory), "--listen", "127.0.0.1:%d" % port, *extra]),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = "http://127.0.0.1:%d" % port
    try:
        if netns:
            wait_http_in(netns, base + "/healthz")
        else:
            wait_http(base + "/healthz")
        yield base
    finally:
        stop(proc)
        log.close()


@contextmanager
def telnetd(board: FakeBoard, port: int = 23) -> Iterator[int]:
    """The test telnetd in ``board``'s namespace, logging in to its busybox shell."""
    pw = write_private(board.root / "telnet-password", TELNET_PASSWORD + "\n")
    proc = subprocess.Popen(
        [shutil.which("ip") or "ip", "netns", "exec", board.netns, sys.executable, str(TELNETD),
         board.address,
         str(port), "root", str(pw), str(board.bin_dir / "sh")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
        env={"PATH": str(board.bin_dir), "HOME": "/"})
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"listening\n"
        yield port
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bf-agentless-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def fleet(workdir: Path) -> Iterator[Dict[str, object]]:
    """Four agentless boards (one behind telnet, listed twice: right and wrong password)
    and a fleet service probing them."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    specs = [BoardSpec("hi0", "hi3516ev200", python=False),
             BoardSpec("gen0", "generic", python=False),
             BoardSpec("dead0", "generic", python=False),
             BoardSpec("tel0", "ss928", python=False)]
    with boards(specs) as fb:
        by_name = {b.name: b for b in fb}
        with telnetd(by_name["tel0"]) as tport:
            entries: List[Dict[str, object]] = []
            for b in fb:
                entry = {"name": b.name, "host": b.address, "mode": "agentless",
                         "sysroot": str(b.sysroot), "labels": {"lab": "ci"}}
                if b.name == "tel0":
                    entry.update(transport="telnet", port=tport)
                entries.append(entry)
            # The same telnetd, but the secrets file has a wrong password for it.
            entries.append(dict(entries[-1], name="tel1"))
            inventory = workdir / "boards.yml"
            inventory.write_text(yaml.safe_dump({"boards": entries}))
            secrets = write_private(workdir / "secrets.yml", yaml.safe_dump({
                "default": {"key_file": str(fb[0].client_key)},
                "boards": {"tel0": {"password": TELNET_PASSWORD},
                           "tel1": {"password": WRONG_PASSWORD}}}))
            token = write_private(workdir / "token", TOKEN + "\n")
            known = workdir / "known_hosts"
            known.write_text("".join(b.known_hosts_line + "\n" for b in fb))
            with served(inventory, workdir, "--secrets", str(secrets), "--token-file",
                        str(token), "--known-hosts", str(known),
                        "--timeout", str(PROBE_TIMEOUT)) as base:
                yield {"base": base, "boards": by_name, "inventory": inventory,
                       "workdir": workdir}


def agentless_job(service: str) -> Dict[str, object]:
    """The ``boardfleet-agentless`` job from prometheus/prometheus.yml, aimed at ``service``."""
    cfg = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "boardfleet-agentless")
    text = yaml.safe_dump(job).replace("127.0.0.1:9120", service)
    job = yaml.safe_load(text)
    job["http_sd_configs"][0]["refresh_interval"] = "1s"
    return job


T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str) -> T:
    """Call ``check`` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.5)
