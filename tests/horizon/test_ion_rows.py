"""ION client and buffer rows: the token splitter reads rows as the old regexes did.

The regexes (kept here as the oracle) found the name with a lazy group and backtracked;
with two lazy groups a malformed 16 kB row took 5 s. The parser now splits tokens from
the right, and must accept and reject exactly the rows the regexes did.
"""

import re
from typing import Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.ion import _Block, _buffer, _row

CLIENT = re.compile(r"^(.*?)\s*(?<!\S)(\d+)\s+(\d+)$")
BUF_X3 = re.compile(r"^(.*?)\s*(?<!\S)(\d+)\s+(\S+)\s+(?:0x[0-9a-fA-F]+|0)\s+(\d+)\s+-?\d+$")
BUF_X5 = re.compile(r"^(.*?)\s*(?<!\S)(\d+)\s+(\S+)\s+(\d+)\s+-?\d+$")
BUF_ORPHAN = re.compile(r"^(.*?)\s*(?<!\S)(\d+)\s+(\d+)\s+-?\d+\s+-?\d+$")
BUF_USER_PID = re.compile(
    r"^(.*?)\s*(?<!\S)(\d+)\s+(.*?)\s*(?<!\S)\d+\s+(\d+)\s+-?\d+\s+-?\d+$")

TOKENS = st.sampled_from(["0", "7", "42", "-1", "0x1f", "0xzz", "worker", "3", "a1",
                          "hrt_model_exec", "system", "-", "--5", "x"]) | st.text(
    alphabet="0123456789abx-", min_size=1, max_size=4)
NUMBERS = st.sampled_from(["0", "7", "42", "3", "-1", "0x1f", "x"])
SEP = st.sampled_from([" ", "  ", "\t"])


def _join(tokens) -> str:
    return "".join(t + sep for t, sep in tokens).strip()


# Random token soup, and rows shaped like the real layouts: a name of 0-3 words (which
# may be numbers) then numeric columns, some of them wrong.
ROWS = (st.lists(st.tuples(TOKENS, SEP), min_size=1, max_size=9).map(_join)
        | st.tuples(st.lists(st.tuples(TOKENS, SEP), max_size=3),
                    st.lists(st.tuples(NUMBERS | TOKENS, SEP), min_size=2, max_size=6)
                    ).map(lambda t: _join(t[0] + t[1])))


def _new(line: str, orphans: bool, user_pid: bool) -> Tuple | None:
    cur = _Block()
    cur.in_buffers, cur.orphans_only, cur.user_pid = True, orphans, user_pid
    try:
        b = _buffer(cur, line)
    except ParseError:
        return None
    return tuple(b)


def _old(line: str, orphans: bool, user_pid: bool) -> Tuple | None:
    if orphans:
        m = (BUF_USER_PID if user_pid else BUF_ORPHAN).match(line)
        if not m:
            return None
        size = m.group(4) if user_pid else m.group(3)
        return (m.group(1), int(m.group(2)), int(size), "", True)
    orphaned = line.endswith(" orphaned")
    if orphaned:
        line = line[:-len(" orphaned")].rstrip()
    m = BUF_X3.match(line)
    if m:
        return (m.group(1), int(m.group(2)), int(m.group(4)), m.group(3), orphaned)
    m = BUF_X5.match(line)
    if m:
        return (m.group(1), int(m.group(2)), int(m.group(4)), m.group(3), orphaned)
    return None


@given(ROWS, st.booleans(), st.booleans(), st.booleans())
def test_buffer_rows_read_as_the_regexes_read_them(line: str, orphans: bool, user_pid: bool,
                                                   tag: bool) -> None:
    if tag and not orphans:
        line += " orphaned"
    assert _new(line, orphans, user_pid) == _old(line, orphans, user_pid)


@given(ROWS)
def test_client_rows_read_as_the_regex_read_them(line: str) -> None:
    cur = _Block()
    m = CLIENT.match(line)
    if not m or all(w in ("heap", "name", "client", "pid", "size") for w in line.split()):
        return
    _row(cur, line)
    assert [(c.name, c.pid, c.size) for c in cur.clients] == [
        (m.group(1).strip(), int(m.group(2)), int(m.group(3)))]


@given(ROWS)
def test_rows_the_regex_refused_are_refused(line: str) -> None:
    if CLIENT.match(line) or all(w in ("heap", "name", "client", "pid", "size", "user",
                                       "user_pid", "mcnt", "rcnt") for w in line.split()):
        return
    with pytest.raises(ParseError):
        _row(_Block(), line)


def test_a_long_malformed_row_is_refused() -> None:
    line = "a 1 " * 4000 + "x"  # 5 s of backtracking for the user_pid regex
    for orphans, user_pid in ((True, True), (True, False), (False, False)):
        assert _new(line, orphans, user_pid) is None


@pytest.mark.parametrize("line, orphans, user_pid, want", [
    ("hrt_model_exec 1234 bpu0 0x1f 4096 1", False, False,
     ("hrt_model_exec", 1234, 4096, "bpu0", False)),
    ("worker 3 77 vpu 8192 2 orphaned", False, False, ("worker 3", 77, 8192, "vpu", True)),
    ("cam 9 system 1000 4096 3 4", True, True, ("cam", 9, 4096, "", True)),
    ("cam 9 12 3 4", True, False, ("cam", 9, 12, "", True)),
])
def test_rows_of_each_layout(line: str, orphans: bool, user_pid: bool, want: Tuple) -> None:
    assert _new(line, orphans, user_pid) == _old(line, orphans, user_pid) == want
