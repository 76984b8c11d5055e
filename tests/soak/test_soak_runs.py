"""Soak runs: the SQLite store, board selectors and the ``boardfleet soak`` commands."""

import json
import os
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from boardfleet.cli import main
from boardfleet.commands.soak import parse_time
from boardfleet.inventory import Board
from boardfleet.soak.selector import select
from boardfleet.soak.store import SoakError, SoakStore

BOARDS = [
    Board(name="hi3516-r1-01", host="198.18.250.1", platform="hisi",
          labels={"rack": "r1", "owner": "vision"}),
    Board(name="hi3516-r2-01", host="198.18.250.2", platform="hisi",
          labels={"rack": "r2", "owner": "audio"}),
    Board(name="rdk-s100-r1", host="198.18.250.3", platform="horizon",
          labels={"rack": "r1", "owner": "adas"}),
    Board(name="qcs6490-r2", host="198.18.250.4", platform="snapdragon", mode="agentless",
          labels={"rack": "r2"}),
]


@pytest.mark.parametrize(("selector", "expected"), [
    ("all", ["hi3516-r1-01", "hi3516-r2-01", "qcs6490-r2", "rdk-s100-r1"]),
    ("rack=r1", ["hi3516-r1-01", "rdk-s100-r1"]),
    ("rack=r1,owner=vision", ["hi3516-r1-01"]),
    ("platform=hisi", ["hi3516-r1-01", "hi3516-r2-01"]),
    ("hi3516-*", ["hi3516-r1-01", "hi3516-r2-01"]),
    ("hi3516-*,rack=r2", ["hi3516-r2-01"]),
    ("rack!=r1", ["hi3516-r2-01", "qcs6490-r2"]),
    ("qcs6490-r2, rdk-s100-r1", ["qcs6490-r2", "rdk-s100-r1"]),
    ("qcs6490-r2 rdk-s100-r1", ["qcs6490-r2", "rdk-s100-r1"]),
    ("mode=agentless", ["qcs6490-r2"]),
    ("owner!=vision,rack=r1", ["rdk-s100-r1"]),
])
def test_selectors(selector: str, expected: list) -> None:
    assert select(BOARDS, selector) == expected


@pytest.mark.parametrize(("selector", "message"), [
    ("", "empty board selector"),
    ("nope", "board 'nope' is not in the inventory"),
    ("rack=r9", "matches no board"),
    ("=r1", "neither a board name nor label=value"),
    ("hi3516-r1-01 r1", "board 'r1' is not in the inventory"),
    ("1rack=r1", "neither a board name nor label=value"),
])
def test_bad_selectors_say_why(selector: str, message: str) -> None:
    with pytest.raises(SoakError, match=message):
        select(BOARDS, selector)


@given(st.text(alphabet=string.printable + "äß\u2028*?[]=!,", max_size=40))
def test_any_selector_selects_or_says_why(selector: str) -> None:
    try:
        chosen = select(BOARDS, selector)
    except SoakError as e:
        assert str(e)
    else:
        assert chosen and set(chosen) <= {b.name for b in BOARDS}


def test_store_runs_and_alerts(tmp_path: Path) -> None:
    store = SoakStore(str(tmp_path / "soaks.sqlite"))
    run = store.start("fw-2.3", ["b2", "b1"], "rack=r1", {"firmware": "2.3"}, now=1000.0)
    assert run.boards == ["b1", "b2"] and run.active
    with pytest.raises(SoakError, match="already exists"):
        store.start("fw-2.3", ["b1"], "b1")
    with pytest.raises(SoakError, match="use 1-63 letters"):
        store.start("bad name", ["b1"], "b1")
    assert [r.name for r in SoakStore(store.path).active()] == ["fw-2.3"]
    stopped = store.stop("fw-2.3", now=4600.0)
    assert stopped.stopped == 4600.0 and store.get("fw-2.3").meta == {"firmware": "2.3"}
    assert store.active() == []
    with pytest.raises(SoakError, match="already stopped"):
        store.stop("fw-2.3")
    with pytest.raises(SoakError, match="no soak run named 'x'"):
        store.get("x")


def test_unwritable_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SoakError, match="cannot open soak store"):
        SoakStore(str(tmp_path / "file" / "soaks.sqlite"))


@pytest.mark.parametrize(("text", "expected"), [
    ("1764633600", 1764633600.0),
    ("2025-12-02T00:00:00Z", 1764633600.0),
    ("2025-12-02T08:00:00+08:00", 1764633600.0),
    ("2025-12-02 00:00:00", 1764633600.0),
])
def test_times(text: str, expected: float) -> None:
    assert parse_time(text) == expected


def test_bad_time() -> None:
    with pytest.raises(SoakError, match="RFC 3339"):
        parse_time("yesterday")


def test_cli_start_list_stop(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inv = tmp_path / "boards.yml"
    inv.write_text(yaml.safe_dump({"boards": [
        {"name": b.name, "host": b.host, "platform": b.platform, "labels": b.labels}
        for b in BOARDS]}))
    base = ["soak", "-i", str(inv)]
    assert main([*base, "start", "night", "--boards", "rack=r1", "--meta", "firmware=2.3",
                 "--meta", "operator=li"]) == 0
    assert "on 2 boards: hi3516-r1-01, rdk-s100-r1" in capsys.readouterr().out
    assert (tmp_path / "soaks.sqlite").exists()
    assert main([*base, "start", "night", "--boards", "all"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*base, "start", "x", "--boards", "rack=r1", "--meta", "oops"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main([*base, "list"]) == 0
    out = capsys.readouterr().out
    assert "night" in out and "active" in out and "firmware=2.3,operator=li" in out
    assert main([*base, "stop", "night"]) == 0
    assert main([*base, "list", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert runs[0]["active"] is False and runs[0]["meta"]["operator"] == "li"
    assert main([*base, "stop", "night"]) == 2
    assert main([*base, "report", "nope", "--prometheus", "http://127.0.0.1:9"]) == 2
    assert "no soak run named 'nope'" in capsys.readouterr().err


def test_cli_annotates_grafana_and_survives_it_failing(
        tmp_path: Path, capsys: pytest.CaptureFixture, grafana: list,
        monkeypatch: pytest.MonkeyPatch) -> None:
    inv = tmp_path / "boards.yml"
    inv.write_text(yaml.safe_dump({"boards": [{"name": "b1", "host": "198.18.250.1"}]}))
    token = tmp_path / "token"
    token.write_text("glsa_file\n")
    url = os.environ["BOARDFLEET_GRAFANA_URL"]
    base = ["soak", "-i", str(inv)]
    assert main([*base, "start", "a", "--boards", "b1", "--grafana-url", url,
                 "--grafana-token-file", str(token)]) == 0
    assert main([*base, "stop", "a"]) == 0          # URL and token from the environment
    assert [(g["auth"], g["body"]["tags"][-2:]) for g in grafana] == [
        ("Bearer glsa_file", ["start", "board:b1"]), ("Bearer glsa_test", ["stop", "board:b1"])]
    monkeypatch.setenv("BOARDFLEET_GRAFANA_URL", "http://127.0.0.1:9")
    assert main([*base, "start", "b", "--boards", "b1"]) == 0
    err = capsys.readouterr().err
    assert "warning: Grafana annotation for soak b start failed (http://127.0.0.1:9)" in err
