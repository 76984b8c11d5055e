"""J6 family (RDK S100/S600) ION heaps: the header-read table, the real S100 rows, policy.

The nine-column table (``client pid tgid type size kmap_cnt label shareid paddr``) is
described in issue 14; no public capture of it was found, so the s600 fixture's heap files
are inferred (tests/fixtures/s600/README.md). The S100 rows in
tests/samples/horizon/s100_ion_cma_grep_libhbmem_sample.txt are real.
"""

import contextlib
import logging
from typing import List, Tuple

import pytest
from horizon_helpers import fixture_copy, sample
from hypothesis import given, settings
from hypothesis import strategies as st
from support.paths import FIXTURES

from boardfleet_agent.collectors.ion import IonCollector
from boardfleet_agent.errors import ParseError
from boardfleet_agent.exposition import render
from boardfleet_agent.parsers.ion import IonBuffer, IonClient, parse_all_heap_info, parse_heap_file
from boardfleet_agent.parsers.lines import Skips
from boardfleet_agent.runner import ScrapeRunner
from boardfleet_agent.source import LocalSource

HEAPS = FIXTURES / "s600/sys/kernel/debug/ion/heaps"
DASH = "-" * 73
HEADER = ("          client      pid     tgid             type             size kmap_cnt"
          "            label  shareid              paddr")


def test_s600_carveout_table() -> None:
    heap = parse_heap_file((HEAPS / "carveout").read_text(), "carveout")
    assert (heap.name, heap.capacity, heap.used, heap.orphaned) == (
        "carveout", 1073741824, 75497472, 4194304)
    assert heap.clients[0] == IonClient("hrt_model_exec", 2301, 33554432)
    assert IonClient("pipeline", 2410, 12582912) in heap.clients  # blank label column
    assert heap.buffers[-1] == IonBuffer("hrt_model_exec", 1998, 4194304, "bpu0", True)
    assert [b.usage for b in heap.buffers] == ["bpu0", "bpu1", "bpu", "vpu", "bpu0"]
    # Orphaned buffers belong to no client: not in the per-process bytes.
    assert sum(c.size for c in heap.clients) == heap.used - heap.orphaned


def test_s600_client_name_with_space_and_empty_heaps() -> None:
    heap = parse_heap_file((HEAPS / "cma_reserved").read_text(), "cma_reserved")
    assert IonClient("VI Thread", 2411, 3145728) in heap.clients
    empty = parse_heap_file((HEAPS / "custom").read_text(), "custom")
    assert (empty.capacity, empty.used, empty.orphaned, empty.clients) == (16777216, 0, 0, [])


def test_s600_all_heap_info_matches_the_heap_files() -> None:
    heaps = parse_all_heap_info((HEAPS / "all_heap_info").read_text())
    assert [h.name for h in heaps] == ["carveout", "cma_reserved", "ion_cma", "ion_uncache",
                                       "custom"]
    for h in heaps:
        assert h == parse_heap_file((HEAPS / h.name).read_text(), h.name)


def test_columns_are_found_by_name_and_unknown_ones_ignored() -> None:
    text = "\n".join([
        "   heap total size 4096000",
        "client pid size tgid type flags kmap_cnt",
        "  app   12  8192   12  bpu0  0x3  0  extra trailing tokens",
        "  app   12  4096   12  vpu   0x1  0  orphaned",
        "  total orphaned 4096", "  total 12288", ""])
    heap = parse_heap_file(text, "h")
    assert heap.clients == [IonClient("app", 12, 8192)]
    assert heap.buffers[1] == IonBuffer("app", 12, 4096, "vpu", True)
    assert (heap.capacity, heap.used, heap.orphaned) == (4096000, 12288, 4096)


def test_table_without_total_lines_sums_its_rows() -> None:
    text = "\n".join([HEADER, "  a 1 1 bpu0 100 0 x 1 0x1", "  b 2 2 vpu 50 0 y 2 0x2 orphaned",
                      ""])
    heap = parse_heap_file(text, "h")
    assert (heap.used, heap.orphaned) == (150, 50)


def test_real_s100_rows_have_no_heap_name_column() -> None:
    """Real S100 output (rdk_s_doc hbmem sample): ``comm pid size`` client rows."""
    lines = sample("horizon", "s100_ion_cma_grep_libhbmem_sample.txt").splitlines()[1:]
    text = "\n".join([
        DASH, "the heap id is 4", DASH, DASH, "         ion_cma  heap total size        536870912",
        DASH, "       heap name           client              pid             size", DASH,
        lines[0], DASH, "allocations (info is from last known client):", lines[1], DASH,
        "  total orphaned                0", "          total          4194304", DASH, ""])
    heap = parse_heap_file(text, "ion_cma")
    assert heap.clients == [IonClient("libhbmem_sample", 1752, 4194304)]
    assert heap.buffers == [IonBuffer("libhbmem_sample", 1752, 4194304, "other", False)]


def test_unknown_lines_are_counted_once_each() -> None:
    skips = Skips("ion")
    text = (HEAPS / "carveout").read_text().replace(
        DASH + "\n  total", "?? firmware says hello\nno digits here\n" + DASH + "\n  total")
    heap = parse_heap_file(text, "carveout", skips)
    assert heap.used == 75497472 and skips.total == 2 and skips.first == "?? firmware says hello"


NAMES = st.sampled_from(["hrt_model_exec", "pipeline", "VI Thread", "python3", "x"])
ROWS = st.lists(st.tuples(NAMES, st.integers(1, 99999), st.integers(0, 2 ** 34),
                          st.booleans()), max_size=8)
UNKNOWN = st.sampled_from(["?? vendor note", "warning: late buffer", "####", "   ...   "])


def _render(rows: List[Tuple[str, int, int, bool]], extra: List[str], unknown: List[str]
            ) -> Tuple[str, List[int]]:
    """A heap file, and the end offset of each row's line (to tell complete rows)."""
    out = [DASH, "        carveout  heap total size       1073741824", DASH, HEADER, DASH]
    ends = []
    for i, (name, pid, size, orphaned) in enumerate(rows):
        line = "%16s %8d %8d %16s %16d %8d %16s %8d %#18x %s" % (
            name, pid, pid, "bpu0", size, 0, "lbl", i, 4096 * i, extra[i % len(extra)])
        out.append(line.rstrip() + (" orphaned" if orphaned else ""))
        ends.append(len("\n".join(out)) + 1)
        if unknown:
            out.append(unknown[i % len(unknown)])
    return "\n".join(out) + "\n", ends


@settings(max_examples=150, deadline=None)
@given(ROWS, st.lists(st.sampled_from(["", "7", "extra col", "0xdead 1 2"]), min_size=1,
                      max_size=3), st.lists(UNKNOWN, max_size=3), st.data())
def test_complete_rows_survive_extra_columns_unknown_lines_and_any_cut(
        rows: List[Tuple[str, int, int, bool]], extra: List[str], unknown: List[str],
        data: st.DataObject) -> None:
    text, ends = _render(rows, extra, unknown)
    cut = data.draw(st.integers(0, len(text)))
    try:
        heap = parse_heap_file(text[:cut], "carveout")
    except ParseError:
        assert cut < len(text.split("\n", 2)[0]) + len(text.split("\n", 2)[1]) + 2
        return
    complete = [r for r, end in zip(rows, ends, strict=True) if end <= cut]
    assert [(b.name, b.pid, b.size, b.orphaned) for b in heap.buffers] == complete
    assert heap.clients == [IonClient(n, p, s) for n, p, s, o in complete if not o]


@pytest.mark.parametrize("heap", ["carveout", "cma_reserved", "ion_cma", "ion_uncache",
                                  "custom"])
def test_every_cut_of_the_fixture_heaps_parses_or_raises_parse_error(heap: str) -> None:
    text = (HEAPS / heap).read_text()
    for cut in range(len(text)):
        with contextlib.suppress(ParseError):
            parse_heap_file(text[:cut], heap)


def test_skipped_lines_are_exported_per_collector_and_logged_once(
        tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    root = fixture_copy("s600", tmp_path)
    heap = root / "sys/kernel/debug/ion/heaps/carveout"
    heap.write_text(heap.read_text().replace(DASH + "\n  total", "?? new line\n" + DASH
                                             + "\n  total"))
    runner = ScrapeRunner([IonCollector({}, "horizon")], LocalSource(str(root)),
                          background=False)
    with caplog.at_level(logging.WARNING, logger="boardfleet.agent"):
        first = render(runner.collect()).decode()
        second = render(runner.collect()).decode()
    assert 'board_collector_skipped_lines_total{collector="ion"} 1.0' in first
    assert 'board_collector_skipped_lines_total{collector="ion"} 2.0' in second
    assert 'board_collector_success{collector="ion"} 1.0' in second
    assert 'board_ion_heap_used_bytes{heap="carveout"} 7.5497472e+07' in second
    logged = [r for r in caplog.records if "?? new line" in r.getMessage()]
    assert len(logged) == 1
