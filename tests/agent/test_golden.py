"""Golden end-to-end output: ``boardfleet-agent --sysroot <fixture> --once`` per board.

Set BOARDFLEET_UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate change,
then review the diff.
"""

import os

import pytest
from support.agent import run_once, stable_lines
from support.paths import BOARDS, FIXTURES, GOLDEN
from support.promtool import check_metrics


@pytest.mark.parametrize("board", BOARDS)
def test_once_output_matches_golden(board: str) -> None:
    got = stable_lines(run_once(str(FIXTURES / board)))
    golden = GOLDEN / ("%s.prom" % board)
    if os.environ.get("BOARDFLEET_UPDATE_GOLDEN") == "1":
        golden.write_text(got)
    assert golden.exists(), "no golden file %s; run with BOARDFLEET_UPDATE_GOLDEN=1" % golden
    assert got == golden.read_text()


@pytest.mark.parametrize("board", BOARDS)
def test_once_output_passes_promtool(board: str) -> None:
    assert check_metrics(run_once(str(FIXTURES / board))) == []


@pytest.mark.parametrize("board", BOARDS)
def test_every_collector_succeeds_on_fixture(board: str) -> None:
    text = run_once(str(FIXTURES / board))
    failed = [line for line in text.splitlines()
              if line.startswith("board_collector_success") and line.endswith(" 0.0")]
    assert failed == []
