"""Issue 13: an app-chosen name with a line break must not disable the ION or dmabuf
collector, nor change another row's figures.

Task names (``prctl(PR_SET_NAME)``, 15 bytes) are the client names of ION debugfs, and
dma-buf names (``DMA_BUF_SET_NAME``, 32 bytes) end each ``bufinfo`` buffer line; the
kernel prints both as they are. Before, a name holding ``total 9`` after a line break
became the heap's total (the rows after it ignored, success 1), ``the heap id is5``
split the heap file in two (ParseError: the collector failed every run), a fake
``Total 0 objects, 0 bytes`` footer dropped every buffer after it, and ``\\x1c``,
``\\x85`` or ``\\u2028`` broke lines where the kernel did not (``str.splitlines``).
Now the row with the broken name is skipped and counted (or kept whole), the others
are kept with their figures.
"""

from typing import Dict, List, Tuple

from hypothesis import example, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from boardfleet_agent.collectors.dmabuf import BUFINFO, DmaBufCollector
from boardfleet_agent.collectors.ion import HEAPS_DIR, IonCollector
from boardfleet_agent.exposition import render
from boardfleet_agent.outcome import Outcome, run_collector
from boardfleet_agent.source import SnapshotSource

DASHES = "-" * 73 + "\n"
CAPACITY = 268435456
# Names: a fragment, a line break (or a character str.splitlines breaks on but the kernel
# does not), a fragment; fragments include the parsers' structure lines. Or random text.
BREAKS = st.sampled_from(["\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85",
                          "\u2028", "\u2029", "\n\n", "\t\n"])
FRAGMENTS = st.one_of(st.sampled_from([
    "", " ", "total 9", "total 0", "deferred free 9", "the heap id is5", "total orphaned",
    "Total 0 objects, 0 bytes", "Total 1 devices attached", "Attached Devices:",
    "Dma-buf Objects:", "\tsoc:qcom,camera", "x heap total size 1", "4096", "-" * 12,
    "client pid size", "0 0 0 0",
]), st.text(max_size=6))
BROKEN = st.one_of(
    st.tuples(FRAGMENTS, BREAKS, FRAGMENTS).map("".join),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=15),
)
CLEAN = {"python3": 1048576, "VI Thread": 2097152, "infer": 4194304, "hbmem_sample": 65536}


def ion_row(layout: str, name: str, pid: int, size: int) -> str:
    if layout == "x5":
        return "%16s %16s %16u %16u\n" % ("ion_cma", name, pid, size)
    if layout == "plain":
        return "%16s %16u %16u\n" % (name, pid, size)
    return "%16s %8u %8u %16s %16u %8u %16s %8u %18s\n" % (
        name, pid, pid, "other", size, 0, "", 16, "0x120000000")


def ion_heap(layout: str, rows: List[Tuple[str, int, int]]) -> str:
    header = {
        "x5": "       heap name           client              pid             size\n",
        "plain": "          client              pid             size\n",
        "j6": "          client      pid     tgid             type             size kmap_cnt"
              "            label  shareid              paddr\n",
    }[layout]
    total = sum(size for _, _, size in rows)
    return (DASHES + "the heap id is 3\n" + DASHES + DASHES
            + "         ion_cma  heap total size        %d\n" % CAPACITY + DASHES + header
            + DASHES + "".join(ion_row(layout, *r) for r in rows) + DASHES
            + "  total orphaned                0\n          total           %d\n" % total
            + DASHES)


def by_label(outcome: Outcome, family: str, label: str) -> Dict[str, float]:
    return {s.labels[label]: s.value for f in outcome.families for s in f.samples
            if f.name == family}


def assert_renders(outcome: Outcome) -> None:
    """The families render to exposition text Prometheus' parser reads back."""
    text = render(outcome.families).decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert names >= {f.name for f in outcome.families if f.samples}


@settings(max_examples=300, deadline=None)
@given(layout=st.sampled_from(["x5", "plain", "j6"]), broken=BROKEN,
       at=st.integers(0, len(CLEAN)))
# Found by hypothesis: the J6 table read "total 9" as name and pid, then every column
# one to the right (tgid "the", size the real tgid).
@example(layout="j6", broken="total 9\rthe hea", at=0)
def test_ion_client_name_with_line_breaks(layout: str, broken: str, at: int) -> None:
    broken = broken[:15]  # TASK_COMM_LEN - 1
    rows = [(name, 1000 + i, size) for i, (name, size) in enumerate(CLEAN.items())]
    rows.insert(at, (broken, 4242, 8192))
    total = sum(size for _, _, size in rows)
    collector = IonCollector({})
    out = run_collector(collector, SnapshotSource(
        {HEAPS_DIR + "/ion_cma": ion_heap(layout, rows)}))
    assert out.success, out.error  # not disabled
    assert by_label(out, "board_ion_heap_used_bytes", "heap") == {"ion_cma": total}
    assert by_label(out, "board_ion_heap_size_bytes", "heap") == {"ion_cma": CAPACITY}
    per_process = by_label(out, "board_ion_process_bytes", "process")
    for name, size in CLEAN.items():
        assert per_process.get(name, 0) >= size, (name, per_process)
    if sum(per_process.values()) != total:  # the broken row was not kept whole
        assert collector.skips.total >= 1
    assert_renders(out)


def bufinfo(buffers: List[Tuple[int, str, str]]) -> str:
    lines = ["", "Dma-buf Objects:",
             "size    \tflags   \tmode    \tcount   \texp_name\tino     \tname"]
    for ino, (size, exporter, name) in enumerate(buffers, 100):
        lines.append("%08d\t%08x\t%08x\t%08d\t%s\t%08d\t%s" % (size, 2, 0x80007, 1, exporter,
                                                              ino, name))
        lines += ["\tAttached Devices:", "\tsoc:qcom,camera", "Total 1 devices attached", ""]
    lines.append("Total %d objects, %d bytes" % (len(buffers), sum(b[0] for b in buffers)))
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None)
@given(broken=BROKEN, at=st.integers(0, 3))
def test_dmabuf_name_with_line_breaks(broken: str, at: int) -> None:
    broken = broken[:32]  # DMA_BUF_NAME_LEN
    buffers = [(4096, "system", "<none>"), (1048576, "qcom,system", "camera"),
               (65536, "system", "gfx"), (2097152, "qcom,secure-pixel", "")]
    buffers.insert(at, (8192, "system", broken))
    collector = DmaBufCollector({})
    out = run_collector(collector, SnapshotSource({BUFINFO: bufinfo(buffers)}))
    assert out.success, out.error  # not disabled
    got = by_label(out, "board_dmabuf_bytes", "exporter")
    want = {"system": 4096 + 65536 + 8192, "qcom,system": 1048576,
            "qcom,secure-pixel": 2097152}
    assert got == want or (collector.skips.total >= 1 and got == dict(
        want, system=4096 + 65536)), got
    assert_renders(out)


def test_a_fake_total_in_a_task_name_is_not_the_heap_total() -> None:
    """The example found first: a thread named "total 9\\n" on a heap without a heap
    column ended the client rows and set the heap's used bytes to 9, with success 1."""
    rows = [("python3", 1000, 1048576), ("total 9\n", 4242, 8192), ("infer", 1001, 4096)]
    collector = IonCollector({})
    out = run_collector(collector, SnapshotSource({HEAPS_DIR + "/ion_cma":
                                                   ion_heap("plain", rows)}))
    assert out.success
    assert by_label(out, "board_ion_heap_used_bytes", "heap") == {"ion_cma": 1048576 + 8192
                                                                  + 4096}
    assert by_label(out, "board_ion_process_bytes", "process")["infer"] == 4096
    assert collector.skips.total == 1
