"""The inventory file as people and other programs use it.

Hand-written comments and the file's mode survive every change; concurrent writers
(CLI commands, the fleet service) never lose each other's boards; file-SD targets and
known_hosts are readable by other users whatever the umask; bad files give an
``InventoryError`` naming the file, never a traceback.
"""

import json
import multiprocessing
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.files import strict_umask  # noqa: F401 (fixture)

from boardfleet.cli import main
from boardfleet.inventory import Board, InventoryError, editing, load

HAND_WRITTEN = """\
# Lab SZ soak rack: edit by hand or with boardfleet inventory.
boards:
  - name: hi0        # Hi3519 on the left shelf
    host: 10.20.0.13
    labels: {rack: r1, owner: vision}   # keep flow style
  # the Horizon board borrowed from team B
  - name: rdk0
    host: 10.20.0.14
    mode: agentless
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("strict_umask")
def test_cli_add_and_remove_keep_comments_mode_and_targets(tmp_path: Path, capsys):
    inv, targets = tmp_path / "boards.yml", tmp_path / "targets"
    inv.write_text(HAND_WRITTEN)
    inv.chmod(0o640)
    common = ["-i", str(inv), "--targets-dir", str(targets)]
    assert main(["inventory", *common, "add", "new0", "10.20.0.15", "--agent-port", "9200",
                 "--label", "rack=r2"]) == 0
    text = inv.read_text()
    for kept in ("# Lab SZ soak rack", "# Hi3519 on the left shelf",
                 "labels: {rack: r1, owner: vision}   # keep flow style",
                 "# the Horizon board borrowed from team B"):
        assert kept in text, text
    assert mode(inv) == 0o640
    assert [b.name for b in load(str(inv))] == ["hi0", "new0", "rdk0"]
    sd = targets / "boards.json"
    assert mode(sd) == 0o644 and mode(targets) & 0o055 == 0o055
    groups = json.loads(sd.read_text())
    assert sorted(g["targets"][0] for g in groups) == ["10.20.0.13:9776", "10.20.0.15:9200"]

    assert main(["inventory", *common, "remove", "hi0"]) == 0
    assert "# the Horizon board borrowed from team B" in inv.read_text()
    assert [g["targets"][0] for g in json.loads(sd.read_text())] == ["10.20.0.15:9200"]
    assert "targets: %s" % sd in capsys.readouterr().out


def test_same_agent_address_twice_is_refused(tmp_path: Path, capsys):
    inv = tmp_path / "boards.yml"
    args = ["inventory", "-i", str(inv), "--targets-dir", str(tmp_path / "t"), "add"]
    assert main([*args, "a", "10.0.0.1"]) == 0
    assert main([*args, "b", "10.0.0.1"]) == 2
    assert "already registered as board 'a'" in capsys.readouterr().err
    assert main([*args, "b", "10.0.0.1", "--agent-port", "9101"]) == 0


def _add_many(path: str, prefix: str, n: int) -> None:
    for i in range(n):
        with editing(path) as inv:
            inv.add(Board(name="%s%d" % (prefix, i), host="10.%d.0.%d" % (ord(prefix[0]), i)))


def test_concurrent_writers_lose_nothing(tmp_path: Path):
    path = str(tmp_path / "boards.yml")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add_many, args=(path, p, 15)) for p in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(load(path)) == 45


@pytest.mark.usefixtures("strict_umask")
def test_known_hosts_written_readable(tmp_path: Path):
    from boardfleet.ssh import _Policy

    class Key:
        def get_name(self) -> str:
            return "ssh-ed25519"

        def get_base64(self) -> str:
            return "AAAAC3NzaC1lZDI1NTE5AAAAIB"

        def asbytes(self) -> bytes:
            return b"key"

    kh = tmp_path / "known_hosts"
    _Policy(None, True, str(kh)).missing_host_key(None, "10.0.0.1", Key())
    assert mode(kh) == 0o644 and kh.read_text().startswith("10.0.0.1 ssh-ed25519 ")


@pytest.mark.parametrize("content, words", [
    (b"boards:\n  - {name: a, host: h, 7: x}\n", "unknown key 7"),
    (b"boards:\n  - name: a\n    host: h\x00\n", "NUL"),
    (b"\xff\xfe\x00binary", "not UTF-8"),
    (b"boards:\n  - {name: a, host: h}\n  - {name: a, host: g}\n", "listed twice"),
    (b"boards: {a: 1}\n", "top-level 'boards:' list"),
    (b"boards:\n  - name: a\n    name: b\n    host: h\n", "not valid YAML"),
])
def test_bad_files_name_file_and_cause(tmp_path: Path, content: bytes, words: str):
    path = tmp_path / "boards.yml"
    path.write_bytes(content)
    with pytest.raises(InventoryError) as e:
        load(str(path))
    assert str(path) in str(e.value) and words in str(e.value)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: ("boards:\n  - " + t).encode("utf-8", "replace")),
    st.lists(st.sampled_from([b"boards:", b"\n", b"  - ", b"name: a", b"host: h", b"{",
                              b"}", b": ", b"7", b"labels:", b"\x00", b"#c", b"- "]),
             max_size=30).map(b"".join)))
def test_any_file_loads_or_fails_with_inventory_error(tmp_path: Path, content: bytes):
    path = tmp_path / "boards.yml"
    path.write_bytes(content)
    try:
        inv = load(str(path))
    except InventoryError:
        return
    inv.save()  # what loads also saves, and reads back the same
    assert [b.name for b in load(str(path))] == [b.name for b in inv]


def test_service_and_cli_share_the_file(tmp_path: Path):
    """The running service sees CLI edits and never overwrites them with its own copy."""
    from fastapi.testclient import TestClient

    from boardfleet.probe import Prober
    from boardfleet.service.app import ServiceState, create_app
    from boardfleet.transports.pool import SessionPool
    from boardfleet.transports.secrets import Secrets

    path = tmp_path / "boards.yml"
    path.write_text(HAND_WRITTEN)
    state = ServiceState(load(str(path)), Prober(SessionPool({}, Secrets())), "tok")
    auth = {"Authorization": "Bearer tok"}
    try:
        client = TestClient(create_app(state))
        cli = ["inventory", "-i", str(path), "--targets-dir", str(tmp_path / "t"), "add"]
        assert main([*cli, "cli0", "10.20.0.20"]) == 0
        assert "cli0" in [b["name"] for b in client.get("/boards").json()]
        r = client.post("/boards", json={"name": "api0", "host": "10.20.0.21"}, headers=auth)
        assert r.status_code == 201, r.text
        assert main([*cli, "cli1", "10.20.0.22"]) == 0
        assert sorted(b.name for b in load(str(path))) == ["api0", "cli0", "cli1", "hi0",
                                                            "rdk0"]
        assert "# the Horizon board borrowed from team B" in path.read_text()
        r = client.post("/boards", json={"name": "x", "host": "h", "lables": {}},
                        headers=auth)
        assert r.status_code == 422 and "lables" in r.text
        assert len(client.get("/boards").json()) == 5
        path.write_text("boards: [")  # a bad hand edit: the last good inventory stays
        assert len(client.get("/boards").json()) == 5
    finally:
        state.close()
