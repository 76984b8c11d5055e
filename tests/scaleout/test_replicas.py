"""Agentless probe sharding across fleet service replicas (``boardfleet serve --replica``)."""

import json
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.net import free_port, wait_http
from support.process import terminate

from boardfleet.inventory import Board, Inventory
from boardfleet.replicas import META_LABEL, Replica, owner

NAMES = st.text(min_size=1, max_size=63)
CLI = [sys.executable, "-c", "import sys; from boardfleet.cli import main; sys.exit(main())"]


@given(NAMES, st.integers(1, 16))
def test_each_board_has_exactly_one_replica(board: str, count: int) -> None:
    owners = [r for r in range(count) if Replica(r, count).owns(board)]
    assert owners == [owner(board, count)]


@given(NAMES, st.integers(1, 15))
def test_adding_a_replica_moves_boards_only_to_it(board: str, count: int) -> None:
    assert owner(board, count + 1) in (owner(board, count), count)


def test_boards_spread_evenly() -> None:
    boards = ["hi3516-rack%02d-%03d" % (r, i) for r in range(30) for i in range(100)]
    shares = [sum(owner(b, 3) == r for b in boards) for r in range(3)]
    assert sum(shares) == len(boards)
    assert min(shares) > len(boards) / 3 * 0.9, shares  # deterministic hash: not flaky


@pytest.mark.parametrize("spec", ["", "1", "3/3", "-1/2", "a/b", "1/0"])
def test_bad_replica_spec(spec: str) -> None:
    with pytest.raises(ValueError):
        Replica.parse(spec)


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_replicas_split_sd_and_refuse_others_probes(tmp_path: Path) -> None:
    inv = Inventory(path=str(tmp_path / "boards.yml"))
    names = ["bb-%02d" % i for i in range(12)]
    for name in names:  # never contacted: no board is probed by its own replica here
        inv.add(Board(name=name, host="127.0.0.1", port=1, mode="agentless", platform="hisi"))
    inv.add(Board(name="with-agent", host="127.0.0.1", agent_port=9776))
    inv.save()
    with ExitStack() as stack:
        urls = []
        for i in range(2):
            port = free_port()
            proc = subprocess.Popen([*CLI, "serve", "-i", str(tmp_path / "boards.yml"),
                                     "--listen", "127.0.0.1:%d" % port, "--replica", "%d/2" % i],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            stack.callback(terminate, proc)
            urls.append("http://127.0.0.1:%d" % port)
            wait_http(urls[-1] + "/healthz", timeout=30)
        seen = []
        for i, url in enumerate(urls):
            groups = _get(url + "/sd?mode=agentless")
            assert all(g["labels"][META_LABEL] == str(i) for g in groups)
            mine = [t for g in groups for t in g["targets"]]
            assert mine == [n for n in names if owner(n, 2) == i]
            seen += mine
            # Agent boards are scraped directly, not probed: every replica lists them all.
            assert [g["targets"] for g in _get(url + "/sd?mode=agent")] == [["127.0.0.1:9776"]]
            other = next(n for n in names if owner(n, 2) != i)
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(url + "/probe?target=" + other, timeout=10)
            assert e.value.code == 421 and "replica %d of 2" % (1 - i) in e.value.read().decode()
        assert sorted(seen) == names
    r = subprocess.run([*CLI, "serve", "-i", str(tmp_path / "boards.yml"), "--replica", "2/2"],
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode == 2 and "I/N" in r.stderr) or "need 0 <= I < N" in r.stderr
