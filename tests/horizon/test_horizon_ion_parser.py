"""ION heap parser: every layout, exact values from the samples and fixtures."""

import pytest
from horizon_helpers import gecko_msm_heap, sample, without_prompt
from support.paths import FIXTURES

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.ion import (
    IonBuffer,
    IonClient,
    parse_all_heap_info,
    parse_heap_file,
)
from boardfleet_agent.parsers.lines import Skips

X5_HEAPS = FIXTURES / "x5" / "sys/kernel/debug/ion/heaps"
X3_HEAPS = FIXTURES / "x3" / "sys/kernel/debug/ion/heaps"


def test_generic_android_juno_empty_heap() -> None:
    text = without_prompt(sample("horizon", "generic_android_ion_heap_compound_page_juno.txt"))
    heap = parse_heap_file(text, "compound_page")
    assert (heap.name, heap.capacity, heap.used, heap.orphaned) == ("compound_page", None, 0, 0)
    assert heap.deferred_free is None
    assert heap.clients == [] and heap.buffers == []


def test_android_user_pid_orphans_and_page_pool_trailer() -> None:
    text = without_prompt(sample("qualcomm", "ion_heap_system_android_user_pid_variant.txt"))
    heap = parse_heap_file(text, "system")
    assert heap.used == heap.orphaned == 18849792
    assert heap.deferred_free == 0
    assert heap.clients == []
    assert len(heap.buffers) == 7
    assert heap.buffers[0] == IonBuffer("allocator@2.0-s", 257, 7372800, "", True)
    assert sum(b.size for b in heap.buffers) == 18849792


def test_msm_long_kernel_client_names() -> None:
    heap = parse_heap_file(gecko_msm_heap(), "system")
    assert heap.clients == [IonClient("adsprpc-smd", 1, 4096),
                            IonClient("fd900000.qcom,mdss_mdp", 1, 1658880)]
    assert [(b.name, b.pid, b.size) for b in heap.buffers] == [
        ("Homescreen", 24100, 294912), ("b2g", 23987, 1658880), ("mdss_fb0", 401, 1658880),
        ("b2g", 23987, 4096), ("Built-in Keyboa", 24205, 61440)]
    assert all(b.orphaned for b in heap.buffers)
    assert (heap.used, heap.orphaned) == (5341184, 3678208)


def test_x5_heap_file() -> None:
    heap = parse_heap_file((X5_HEAPS / "carveout").read_text(), "carveout")
    assert heap.capacity == 536870912
    assert (heap.used, heap.orphaned, heap.deferred_free) == (71303168, 2097152, 0)
    assert heap.clients[0] == IonClient("hrt_model_exec", 1234, 16777216)
    assert IonClient("vpu", 1, 6291456) in heap.clients
    assert heap.buffers[-1] == IonBuffer("hrt_model_exec", 998, 2097152, "bpu0", True)
    assert [b.usage for b in heap.buffers][:5] == ["bpu0", "bpu0", "bpu", "other", "vpuchn0_0"]


def test_x5_client_name_with_space() -> None:
    heap = parse_heap_file((X5_HEAPS / "ion_cma").read_text(), "ion_cma")
    assert IonClient("VI Thread", 3001, 2097152) in heap.clients
    assert IonBuffer("VI Thread", 3001, 2097152, "ispyuv", False) in heap.buffers


def test_x5_all_heap_info_splits_heaps() -> None:
    heaps = parse_all_heap_info((X5_HEAPS / "all_heap_info").read_text())
    assert [(h.name, h.capacity, h.used) for h in heaps] == [
        ("carveout", 536870912, 71303168), ("ion_cma", 268435456, 3145728),
        ("cma_reserved", 1073741824, 0)]


def test_kernel_backed_system_heap_and_pool_trailer() -> None:
    dash = "-" * 73
    text = "\n".join([
        dash, "the heap id is 0", dash, dash,
        "          system allocates from kernel heap", dash,
        "       heap name           client              pid             size", dash,
        "          system          python3             2210            65536",
        "          system                              4242             4096", dash,
        "allocations (info is from last known client):",
        "         python3             2210            other            65536 0",
        "                             4242            other             4096 0", dash,
        "  total orphaned                0", "          total            69632", dash,
        "12 order 0 lowmem pages in pool = 49152 total", ""])
    (heap,) = parse_all_heap_info(text)
    assert (heap.name, heap.capacity, heap.used) == ("system", None, 69632)
    assert heap.clients == [IonClient("python3", 2210, 65536), IonClient("", 4242, 4096)]
    assert heap.buffers[1] == IonBuffer("", 4242, 4096, "other", False)


def test_x3_heap_with_physical_addresses() -> None:
    heap = parse_heap_file((X3_HEAPS / "ion_cma").read_text(), "ion_cma")
    assert heap.capacity is None
    assert heap.clients == [IonClient("hrt_model_exec", 2345, 12582912),
                            IonClient("python3", 2400, 4194304),
                            IonClient("python3", 2401, 1048576)]
    assert heap.buffers[0] == IonBuffer("hrt_model_exec", 2345, 8388608, "bpu0", False)
    assert heap.buffers[-1] == IonBuffer("hrt_model_exec", 2190, 1048576, "bpu0", True)
    assert (heap.used, heap.orphaned) == (18874368, 1048576)


def test_blank_names_and_names_ending_in_digits() -> None:
    text = ("          client              pid             size\n"
            "                              77             4096\n"
            "        worker 3              88             8192\n"
            "orphaned allocations (info is from last known client):\n"
            "  total orphaned                0\n          total            12288\n")
    heap = parse_heap_file(text, "h")
    assert heap.clients == [IonClient("", 77, 4096), IonClient("worker 3", 88, 8192)]


@pytest.mark.parametrize("text", [
    "",
    "          client              pid             size\n  hrt_model_exec   12\n",
    "garbage line\nmore garbage\n",
    "  total orphaned 0",  # cut: the only line lacks its newline
])
def test_heap_files_without_a_usable_line(text: str) -> None:
    with pytest.raises(ParseError):
        parse_heap_file(text, "h")


def test_unknown_lines_are_skipped_and_counted() -> None:
    skips = Skips("ion")
    heap = parse_heap_file("garbage line\n  total orphaned 0\n  total 4096\n", "h", skips)
    assert (heap.used, heap.orphaned, skips.total) == (4096, 0, 1)


def test_cut_file_keeps_its_complete_lines() -> None:
    text = "          client              pid             size\n  total orphaned 0\n  tot"
    heap = parse_heap_file(text, "h")
    assert (heap.used, heap.orphaned) == (None, 0)


def test_all_heap_info_needs_heap_names() -> None:
    text = without_prompt(sample("horizon", "generic_android_ion_heap_compound_page_juno.txt"))
    with pytest.raises(ParseError):
        parse_all_heap_info(text)
