"""ION, BPU and DDR collectors on the fixtures, on broken copies and on snapshots."""

from pathlib import Path

import pytest
from horizon_helpers import fixture_copy, run, samples_of, snapshot_of, value
from support.paths import FIXTURES

from boardfleet_agent.collectors.bpu import BpuCollector
from boardfleet_agent.collectors.horizon_ddr import HorizonDdrCollector
from boardfleet_agent.collectors.ion import IonCollector
from boardfleet_agent.source import LocalSource, SnapshotSource

X5 = LocalSource(str(FIXTURES / "x5"))
X3 = LocalSource(str(FIXTURES / "x3"))
HEAPS = "/sys/kernel/debug/ion/heaps"


def test_ion_x5_reads_per_heap_files_not_all_heap_info() -> None:
    out = run(IonCollector, X5)
    assert out.success and not out.absent
    assert value(out, "board_ion_heap_used_bytes", heap="carveout") == 71303168
    assert value(out, "board_ion_heap_size_bytes", heap="cma_reserved") == 1073741824
    assert value(out, "board_ion_heap_orphaned_bytes", heap="carveout") == 2097152
    # hrt_model_exec has two clients with pid 1234; python3 two pids: summed per name.
    assert value(out, "board_ion_process_bytes", heap="carveout",
                 process="hrt_model_exec") == 16777216 + 8388608
    assert value(out, "board_ion_process_bytes", heap="carveout",
                 process="python3") == 33554432 + 4194304
    heaps = {dict(k[1])["heap"] for k in samples_of(out) if k[0] == "board_ion_heap_used_bytes"}
    assert heaps == {"carveout", "ion_cma", "cma_reserved"}


def test_ion_falls_back_to_all_heap_info(tmp_path: Path) -> None:
    root = fixture_copy("x5", tmp_path)
    for name in ("carveout", "ion_cma", "cma_reserved"):
        (root / HEAPS.lstrip("/") / name).unlink()
    out = run(IonCollector, LocalSource(str(root)))
    assert samples_of(out) == samples_of(run(IonCollector, X5))


def test_ion_x3_has_no_capacity() -> None:
    out = run(IonCollector, X3)
    names = {k[0] for k in samples_of(out)}
    assert "board_ion_heap_size_bytes" not in names
    assert value(out, "board_ion_process_bytes", heap="ion_cma", process="python3") == 5242880


def test_ion_process_cap_sums_the_rest_into_other() -> None:
    rows = "".join("%16s %16d %16d\n" % ("app%d" % i, 100 + i, (i + 1) * 4096) for i in range(5))
    text = ("          client              pid             size\n" + rows
            + "  total orphaned 0\n          total 61440\n")
    src = SnapshotSource({HEAPS + "/system": text})
    got = {dict(k[1])["process"]: v for k, v in samples_of(run(IonCollector, src,
                                                              max_processes=2)).items()
           if k[0] == "board_ion_process_bytes"}
    assert got == {"app4": 20480, "app3": 16384, "other": 4096 + 8192 + 12288}


def test_ion_permission_denied_is_a_failure_with_a_clear_message() -> None:
    out = run(IonCollector, SnapshotSource({HEAPS + "/carveout": None}))
    assert not out.success and "needs root" in out.error
    out = run(IonCollector, SnapshotSource({HEAPS + "/all_heap_info": None}))
    assert not out.success and "permission denied" in out.error


def test_ion_absent_is_no_data() -> None:
    out = run(IonCollector, LocalSource(str(FIXTURES / "generic")))
    assert out.absent and out.success


def test_ion_cut_heap_keeps_its_complete_lines(tmp_path: Path) -> None:
    root = fixture_copy("x5", tmp_path)
    carveout = root / HEAPS.lstrip("/") / "carveout"
    carveout.write_text(carveout.read_text()[:900])
    out = run(IonCollector, LocalSource(str(root)))
    assert out.success
    assert value(out, "board_ion_heap_used_bytes", heap="ion_cma") == 3145728
    assert value(out, "board_ion_heap_size_bytes", heap="carveout") == 536870912
    # The total lines were cut off: no used figure rather than a wrong one.
    assert ("board_ion_heap_used_bytes", (("heap", "carveout"),)) not in samples_of(out)


def test_ion_one_unusable_heap_keeps_the_others(tmp_path: Path) -> None:
    root = fixture_copy("x5", tmp_path)
    (root / HEAPS.lstrip("/") / "carveout").write_text("\x00\x01 not a heap\n")
    out = run(IonCollector, LocalSource(str(root)))
    assert not out.success and "carveout" in out.error
    assert value(out, "board_ion_heap_used_bytes", heap="ion_cma") == 3145728
    assert ("board_ion_heap_used_bytes", (("heap", "carveout"),)) not in samples_of(out)


def test_bpu_x5_and_x3() -> None:
    x5 = run(BpuCollector, X5)
    assert samples_of(x5) == {
        ("board_accelerator_utilization_ratio", (("accelerator", "bpu"), ("core", "all"))): 0.97,
        ("board_accelerator_utilization_ratio", (("accelerator", "bpu"), ("core", "0"))): 0.97,
        ("board_accelerator_frequency_hertz", (("accelerator", "bpu"), ("core", "0"))): 1e9,
    }
    x3 = samples_of(run(BpuCollector, X3))
    assert x3[("board_accelerator_utilization_ratio", (("accelerator", "bpu"), ("core", "1")))] \
        == 0.21
    # bpu1 is powered off: its devfreq reading is stale and not exported.
    assert ("board_accelerator_frequency_hertz", (("accelerator", "bpu"), ("core", "1"))) \
        not in x3


def test_bpu_not_inited_is_skipped_not_failed(tmp_path: Path) -> None:
    root = fixture_copy("x3", tmp_path)
    bpu = root / "sys/devices/system/bpu"
    (bpu / "ratio").write_text("bpu not inited!\n")
    (bpu / "bpu0/ratio").write_text("core not inited!\n")
    out = run(BpuCollector, LocalSource(str(root)))
    assert out.success
    assert {dict(k[1])["core"] for k in samples_of(out)} == {"1"}


def test_bpu_absent_is_no_data() -> None:
    assert run(BpuCollector, LocalSource(str(FIXTURES / "generic"))).absent


def test_axi_mon_x5() -> None:
    out = run(HorizonDdrCollector, X5)
    assert out.success
    assert value(out, "board_ddr_read_bytes_per_second", port="bpu") == 4035e6
    assert value(out, "board_ddr_write_bytes_per_second", port="cpu") == 103e6
    assert value(out, "board_ddr_peak_bytes_per_second", controller="ddr") == 17064e6
    assert value(out, "board_ddr_utilization_ratio", controller="ddr",
                 source="axi_mon") == pytest.approx((4145 + 1278) * 1e6 / 17064e6)


def test_axi_mon_disabled_is_not_read(tmp_path: Path) -> None:
    root = fixture_copy("x5", tmp_path)
    axi = root / "sys/kernel/debug/axi_mon"
    (axi / "enable").write_text("0\n")
    (axi / "statistics").write_text("would fail to parse\n")
    out = run(HorizonDdrCollector, LocalSource(str(root)))
    assert out.absent  # no hrut_ddr on this board either: nothing measured, nothing failed
    # Owning the monitor: the agent enables it, then reads it.
    (axi / "statistics").write_text((FIXTURES / "x5/sys/kernel/debug/axi_mon/statistics")
                                    .read_text())
    out = run(HorizonDdrCollector, LocalSource(str(root)), own_axi_mon=True)
    assert (axi / "enable").read_text() == "1\n"
    assert value(out, "board_ddr_read_bytes_per_second", port="cpu") == 110e6


def test_hrut_ddr_subprocess_with_and_without_peak() -> None:
    out = run(HorizonDdrCollector, X3)
    assert out.success
    assert value(out, "board_ddr_read_bytes_per_second", port="bpu") == 4035e6
    names = {k[0] for k in samples_of(out)}
    assert "board_ddr_utilization_ratio" not in names and "board_ddr_peak_bytes_per_second" \
        not in names
    assert ("board_ddr_read_bytes_per_second", (("port", "sum"),)) not in samples_of(out)
    out = run(HorizonDdrCollector, X3, peak_bytes_per_second=12.8e9)
    assert value(out, "board_ddr_utilization_ratio", controller="ddr",
                 source="hrut_ddr") == pytest.approx(5423e6 / 12.8e9)


def test_hrut_ddr_busy_is_a_failure(tmp_path: Path) -> None:
    root = fixture_copy("x3", tmp_path)
    tool = root / "usr/bin/hrut_ddr"
    tool.write_text("#!/bin/sh\necho 'Error: Open failed!'\n")
    out = run(HorizonDdrCollector, LocalSource(str(root)))
    assert not out.success and "Open failed" in out.error


@pytest.mark.parametrize("cls", [IonCollector, BpuCollector, HorizonDdrCollector])
def test_declared_paths_are_enough_for_an_agentless_probe(cls: type) -> None:
    snapshot = SnapshotSource(snapshot_of(X5, cls.paths))
    assert samples_of(run(cls, snapshot)) == samples_of(run(cls, X5))
