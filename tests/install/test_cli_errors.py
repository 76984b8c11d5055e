"""`boardfleet agent` errors in words: no tracebacks, no flags silently ignored."""

from pathlib import Path

import yaml

from boardfleet.cli import main


def inventory(tmp_path: Path) -> str:
    path = tmp_path / "boards.yml"
    path.write_text(yaml.safe_dump({"boards": [
        {"name": "refused0", "host": "127.0.0.1", "port": 1}]}))
    (tmp_path / "known_hosts").write_text("")
    return str(path)


def test_single_board_flags_in_inventory_mode_are_refused(tmp_path: Path, capsys):
    assert main(["agent", "install", "-i", inventory(tmp_path), "--label", "rack=r1",
                 "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert "--name, --label apply to one board" in err


def test_ask_password_without_a_terminal(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    assert main(["agent", "status", "-i", inventory(tmp_path), "--ask-password"]) == 2
    err = capsys.readouterr().err
    assert "--ask-password needs a terminal" in err and "Traceback" not in err


def test_status_names_the_cause_in_full(tmp_path: Path, capsys):
    assert main(["agent", "status", "-i", inventory(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "refused0 unreachable: cannot connect to 127.0.0.1:1: Connection refused" in out
    assert "Errno" not in out
