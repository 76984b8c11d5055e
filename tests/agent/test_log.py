"""The agent's log: standard ``logging`` records until the command takes the stream, then
one line per record in basicConfig's format, without importing ``logging``."""

import io
import logging
import re
import subprocess
import sys
from typing import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.paths import FIXTURES, REPO

from boardfleet_agent import log as agent_log
from boardfleet_agent.cli import terminal_columns
from boardfleet_agent.log import log, to_stream

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) "
                  r"boardfleet\.agent: ")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    to_stream("info", out)
    yield out
    agent_log.log.stream = None
    agent_log.log.level = agent_log.LEVELS["info"]


def test_records_go_to_logging_until_the_command_takes_the_stream(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="boardfleet.agent")
    log.warning("collector %s failed: %s", "mmz", "EIO")
    log.debug("quiet %d", 1)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "collector mmz failed: EIO"), ("DEBUG", "quiet 1")]


def test_lines_have_basicconfigs_format_and_the_level_filters(stream: io.StringIO) -> None:
    log.debug("not written")
    log.info("serving %s", "0.0.0.0:9101")
    log.error("reload failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert all(LINE.match(line) for line in lines)
    assert lines[0].endswith("INFO boardfleet.agent: serving 0.0.0.0:9101")
    assert lines[1].endswith("ERROR boardfleet.agent: reload failed")


def test_debug_level_writes_debug(stream: io.StringIO) -> None:
    to_stream("debug", stream)
    log.debug("bad request from %s", "10.0.0.1")
    assert stream.getvalue().rstrip().endswith("DEBUG boardfleet.agent: bad request from 10.0.0.1")


def test_an_exception_is_written_with_its_traceback(stream: io.StringIO) -> None:
    try:
        {}["missing"]
    except KeyError:
        log.exception("scrape failed")
    text = stream.getvalue()
    assert "ERROR boardfleet.agent: scrape failed\nTraceback (most recent call last):" in text
    assert text.rstrip().endswith("KeyError: 'missing'")


@given(st.text(max_size=40), st.lists(st.one_of(st.integers(), st.text(max_size=10)),
                                      max_size=3))
def test_a_wrong_format_never_raises(msg: str, args: list) -> None:
    out = io.StringIO()
    to_stream("debug", out)
    try:
        log.warning(msg, *args)
    finally:
        agent_log.log.stream = None
    assert out.getvalue().count("\n") >= 1


def test_a_closed_stream_loses_the_record_only(stream: io.StringIO) -> None:
    stream.close()
    log.error("nobody reads this")  # must not raise


def test_the_served_agent_logs_without_logging(tmp_path) -> None:
    """The command's records are written by the agent's log: ``logging`` is not loaded."""
    code = ("import sys\n"
            "from boardfleet_agent import cli\n"
            "cli.main(['--once', '--log-level', 'debug', '--sysroot', %r])\n"
            "from boardfleet_agent.log import log\n"
            "log.warning('after %%d scrape', 1)\n"
            "sys.stderr.write('loaded: %%s' %% sorted(m for m in ('logging', 'traceback', 'shutil')"
            " if m in sys.modules))\n" % str(FIXTURES / "generic"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=str(REPO / "agent"))
    lines = r.stderr.splitlines()
    assert LINE.match(lines[-2]) and lines[-2].endswith("WARNING boardfleet.agent: after 1 scrape")
    assert lines[-1] == "loaded: []"


@pytest.mark.parametrize("env, expected", [("120", 120), ("0", 80), ("wide", 80), ("-3", 80)])
def test_help_width_follows_columns_like_shutil(monkeypatch: pytest.MonkeyPatch, env: str,
                                                expected: int) -> None:
    monkeypatch.setenv("COLUMNS", env)
    monkeypatch.setattr(sys, "__stdout__", io.StringIO())  # no terminal: no fileno
    assert terminal_columns() == expected
