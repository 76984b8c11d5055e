"""The fleet service under the failures a lab sees: dead boards, floods, wrong host keys.

Boards are namespace boards with real sshd. A "dead" board is one whose sshd is
stopped with SIGSTOP: the kernel still accepts the TCP connection, nothing answers,
the way a hung board behaves.
"""

import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List

import pytest
import yaml
from agentless_helpers import TOKEN, served, write_private
from support.boards import BoardSpec, FakeBoard, boards
from test_service import http

from boardfleet.cli import main
from boardfleet.inventory import Board
from boardfleet.transports import TransportError
from boardfleet.transports.secrets import Credentials
from boardfleet.transports.ssh import connect_ssh

pytestmark = [pytest.mark.netns]
FLOOD = 40


@pytest.fixture(scope="module")
def two_boards() -> Iterator[List[FakeBoard]]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    with boards([BoardSpec("ok0", python=False), BoardSpec("hung0", python=False)]) as fb:
        yield fb


@contextmanager
def hung(board: FakeBoard) -> Iterator[None]:
    assert board.sshd is not None
    os.kill(board.sshd.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(board.sshd.pid, signal.SIGCONT)


def success(text: str) -> float:
    line = next(ln for ln in text.splitlines() if ln.startswith("board_probe_success "))
    return float(line.split()[1])


def test_flood_of_a_hung_board_does_not_starve_the_others(two_boards, tmp_path: Path):
    ok, dead = two_boards
    inventory = tmp_path / "boards.yml"
    inventory.write_text(yaml.safe_dump({"boards": [
        {"name": b.name, "host": b.address, "mode": "agentless", "sysroot": str(b.sysroot)}
        for b in two_boards]}))
    (tmp_path / "known_hosts").write_text("".join(b.known_hosts_line + "\n"
                                                  for b in two_boards))
    secrets = write_private(tmp_path / "secrets.yml", yaml.safe_dump(
        {"default": {"key_file": str(ok.client_key)}}))
    probe_token = write_private(tmp_path / "probe-token", TOKEN)
    # 4 workers only: without single flight, the flood alone would take them all.
    with served(inventory, tmp_path, "--secrets", str(secrets), "--timeout", "4",
                "--concurrency", "4", "--probe-token-file", str(probe_token)) as base, \
            hung(dead):
        assert http("GET", base + "/probe?target=ok0")[0] == 401  # the token is required
        results: List[float] = []
        lock = threading.Lock()

        def flood() -> None:
            status, text = http("GET", base + "/probe?target=hung0", token=TOKEN)
            with lock:
                results.append(success(text) if status == 200 else -1)

        threads = [threading.Thread(target=flood) for _ in range(FLOOD)]
        for t in threads:
            t.start()
        # While the flood waits on the hung board, the healthy board is read.
        status, text = http("GET", base + "/probe?target=ok0", token=TOKEN)
        assert status == 200 and success(text) == 1.0, text[-500:]
        for t in threads:
            t.join(120)
        assert results == [0.0] * FLOOD
        metrics = http("GET", base + "/metrics")[1]
    shared = [ln for ln in metrics.splitlines()
              if ln.startswith('boardfleet_probes_shared_total{board="hung0"}')]
    assert shared and float(shared[0].split()[1]) >= 1, metrics
    failures = [ln for ln in metrics.splitlines()
                if ln.startswith('boardfleet_probe_failures_total{board="hung0"}')]
    assert failures and float(failures[0].split()[1]) == FLOOD
    assert 'boardfleet_probes_total{board="ok0"} 1.0' in metrics


def test_host_keys_are_checked_and_named(two_boards, tmp_path: Path):
    ok, other = two_boards
    board = Board(name="ok0", host=ok.address)
    creds = Credentials(key_file=str(ok.client_key))
    wrong = tmp_path / "known_hosts"
    wrong.write_text(other.known_hosts_line.replace(other.address, ok.address) + "\n")
    with pytest.raises(TransportError, match="CHANGED: ") as e:
        connect_ssh(board, creds, 5, known_hosts=str(wrong))
    assert ok.host_key_fingerprint in str(e.value) and str(wrong) in str(e.value)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(TransportError, match="is not in %s" % empty) as e:
        connect_ssh(board, creds, 5, known_hosts=str(empty))
    assert ok.host_key_fingerprint in str(e.value)
    right = tmp_path / "right_known_hosts"
    right.write_text(ok.known_hosts_line + "\n")
    connect_ssh(board, creds, 5, known_hosts=str(right)).close()


def test_serve_refuses_a_missing_known_hosts_file(tmp_path: Path, capsys):
    (tmp_path / "boards.yml").write_text("boards: []\n")
    missing = tmp_path / "nope" / "known_hosts"
    assert main(["serve", "-i", str(tmp_path / "boards.yml"),
                 "--known-hosts", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "--known-hosts %s does not exist" % missing in err and "Traceback" not in err
