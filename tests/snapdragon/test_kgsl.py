"""Adreno kgsl: parsers on the sample values, the collector on the fixture and variants."""

import fnmatch
import shutil
from pathlib import Path
from typing import Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boardfleet_agent.collectors.kgsl import KgslCollector
from boardfleet_agent.errors import NoData, ParseError
from boardfleet_agent.parsers.kgsl import (
    parse_busy_percentage,
    parse_bytes,
    parse_gpu_model,
    parse_gpubusy,
    parse_proc_mem,
)
from boardfleet_agent.parsers.lines import Skips
from boardfleet_agent.runner import run_collector
from boardfleet_agent.source import LocalSource
from snapdragon.helpers import QCS6490, collect, parsed_or_rejected, sample, samples_of

GPU = {"accelerator": "gpu", "core": "0"}
KEY = tuple(sorted(GPU.items()))


def test_gpubusy_forum_readings_in_driver_padding() -> None:
    lines = sample("kgsl_gpubusy_apq8064t_forum.txt").splitlines()
    assert lines == ["667051 1007167", "531575 1002262"]
    assert parse_gpubusy("%7d %7d\n" % (667051, 1007167)) == pytest.approx(0.662304, abs=1e-6)
    assert parse_gpubusy(lines[1]) == pytest.approx(531575 / 1002262)
    assert parse_gpubusy("      0       0\n") == 0.0  # GPU off for the window: idle
    assert parse_gpubusy("   1001    1000\n") == 1.0


@pytest.mark.parametrize("bad", ["", "12", "1 2 3", "a b", "-1 10", "5 -10"])
def test_gpubusy_bad(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_gpubusy(bad)


def test_sysfs_fixture_sample_values() -> None:
    text = sample("kgsl_sysfs_sample_values_test_fixture.txt")
    assert '"12 %"' in text and '"Adreno (TM) 650"' in text
    assert parse_busy_percentage("12 %\n") == 0.12
    assert parse_gpu_model("Adreno (TM) 650") == "Adreno (TM) 650"
    assert parse_gpu_model("Adreno660v1") == "Adreno660v1"  # newer format, no newline
    assert parse_bytes("4194304\n", "ion") == 4194304


@pytest.mark.parametrize("parser,bad", [
    (parse_busy_percentage, "101 %"), (parse_busy_percentage, "-1 %"),
    (parse_busy_percentage, "%"), (parse_gpu_model, "\n"), (parse_gpu_model, "\x00\x01"),
])
def test_single_value_parsers_bad(parser, bad: str) -> None:
    with pytest.raises(ParseError):
        parser(bad)


def test_bytes_negative() -> None:
    with pytest.raises(ParseError):
        parse_bytes("-4096\n", "kernel")


def _sdm855_mem() -> str:
    # The first line is the shell prompt of the capture.
    return sample("kgsl_proc_mem_android_sdm855.txt").split("\n", 1)[1]


def test_debugfs_mem_sdm855_capture() -> None:
    assert parse_proc_mem(_sdm855_mem()) == {"gpumem": 1089536, "ion": 9469952}


def test_debugfs_mem_usage_with_spaces() -> None:
    comment = sample("kgsl_proc_mem_aosp_gpuservice_comment.txt")
    text = "\n".join(line.replace("//", "", 1) for line in comment.splitlines()[1:]) + "\n"
    assert "VK/others( 38)" in text
    assert parse_proc_mem(text) == {"gpumem": 8359936, "ion": 16293888}


@pytest.mark.parametrize("bad", [
    "0000000000000000 0 big 1 --w--pY-- gpumem any(0) 0 0 0 0",
    "0000000000000000 0 4096 1 --w--pY-- GPU-MEM any(0) 0 0 0 0",
    "0000000000000000 0 4096",
])
def test_debugfs_mem_bad_rows_are_skipped_and_counted(bad: str) -> None:
    skips = Skips("kgsl")
    good = "0000000000000000 0 4096 1 --w--pY-- gpumem any(0) 0 0 0 0\n"
    assert parse_proc_mem(good + bad + "\n" + good, skips) == {"gpumem": 8192}
    assert skips.total == 1


def test_debugfs_mem_truncated_everywhere() -> None:
    raw = _sdm855_mem()
    for i in range(0, len(raw) + 1, 7):
        got = parsed_or_rejected(parse_proc_mem, raw[:i])
        assert got is None or sum(got.values()) <= 1089536 + 9469952


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_kgsl_parsers_random_text(text: str) -> None:
    for parse in (parse_gpubusy, parse_busy_percentage):
        ratio = parsed_or_rejected(parse, text)
        assert ratio is None or 0.0 <= ratio <= 1.0
    model = parsed_or_rejected(parse_gpu_model, text)
    assert model is None or (model and "\n" not in model)
    value = parsed_or_rejected(lambda t: parse_bytes(t, "user"), text)
    assert value is None or value >= 0
    mem = parsed_or_rejected(parse_proc_mem, text)
    assert mem is None or all(v >= 0 for v in mem.values())


def test_collector_on_fixture() -> None:
    got = collect(KgslCollector({}, "snapdragon"), LocalSource(str(QCS6490)))
    assert got["board_accelerator_utilization_ratio"] == {
        KEY: pytest.approx(667051 / 1007167)}
    assert got["board_accelerator_frequency_hertz"] == {KEY: 305000000.0}
    assert got["board_accelerator_info"] == {
        (("accelerator", "gpu"), ("model", "Adreno (TM) 643")): 1.0}
    mem = {(dict(k)["process"], dict(k)["kind"]): v
           for k, v in got["board_gpu_process_memory_bytes"].items()}
    assert mem[("weston", "kernel")] == 2355200
    assert mem[("qnn-net-run", "ion")] == 4194304
    assert mem[("qnn-net-run", "user")] == 131072
    # pid 9999 has a kgsl entry but no /proc/9999: it exited and is skipped.
    assert {p for p, _ in mem} == {"weston", "qnn-net-run", "gst-launch-1.0"}


@pytest.fixture()
def board(tmp_path: Path) -> Path:
    root = tmp_path / "board"
    shutil.copytree(QCS6490, root, symlinks=True)
    return root


def test_busy_percentage_and_gpuclk_fallbacks(board: Path) -> None:
    gpu = board / "sys/class/kgsl/kgsl-3d0"
    (gpu / "gpubusy").unlink()
    shutil.rmtree(gpu / "devfreq")
    got = collect(KgslCollector({}, "snapdragon"), LocalSource(str(board)))
    assert got["board_accelerator_utilization_ratio"] == {KEY: 0.66}
    assert got["board_accelerator_frequency_hertz"] == {KEY: 315000000.0}


def test_same_name_processes_add_up(board: Path) -> None:
    kg = board / "sys/class/kgsl/kgsl/proc"
    shutil.copytree(kg / "640", kg / "641")
    (board / "proc/641").mkdir()
    (board / "proc/641/comm").write_text("weston\n")
    got = collect(KgslCollector({}, "snapdragon"), LocalSource(str(board)))
    key = (("kind", "kernel"), ("process", "weston"))
    assert got["board_gpu_process_memory_bytes"][key] == 2 * 2355200


def test_name_from_stat_when_comm_is_missing(board: Path) -> None:
    (board / "proc/640/comm").unlink()
    got = collect(KgslCollector({}, "snapdragon"), LocalSource(str(board)))
    assert (("kind", "kernel"), ("process", "weston")) in got["board_gpu_process_memory_bytes"]


def test_debugfs_mem_fallback_without_sysfs_process_files(board: Path) -> None:
    shutil.rmtree(board / "sys/class/kgsl/kgsl/proc")
    mem = board / "sys/kernel/debug/kgsl/proc/1420/mem"
    mem.parent.mkdir(parents=True)
    mem.write_text(_sdm855_mem())
    got = collect(KgslCollector({}, "snapdragon"), LocalSource(str(board)))
    assert got["board_gpu_process_memory_bytes"] == {
        (("kind", "ion"), ("process", "qnn-net-run")): 9469952,
        (("kind", "kernel"), ("process", "qnn-net-run")): 1089536,
        (("kind", "user"), ("process", "qnn-net-run")): 0}


def test_no_kgsl_is_no_data(tmp_path: Path) -> None:
    with pytest.raises(NoData):
        list(KgslCollector({}, "snapdragon").collect(LocalSource(str(tmp_path))))


class _Refusing(LocalSource):
    """The fixture with some files refusing reads, as kgsl files do for a non-root agent."""

    def __init__(self, root: str, refused: Tuple[str, ...]) -> None:
        super().__init__(root)
        self.refused = refused

    def read_text(self, path: str) -> str:
        if any(fnmatch.fnmatch(path, p) for p in self.refused):
            raise PermissionError(13, "Permission denied", path)
        return super().read_text(path)


def test_refused_files_cost_only_their_figures() -> None:
    """Issue 14: gpubusy and process files refuse reads; gpu_model is still exported."""
    collector = KgslCollector({}, "snapdragon")
    src = _Refusing(str(QCS6490), ("*/gpubusy", "*/gpu_busy_percentage", "*/kgsl/proc/*/user"))
    out = run_collector(collector, src)
    got = samples_of(out.families)
    assert not out.success and "gpubusy" in out.error
    assert got["board_accelerator_info"] == {
        (("accelerator", "gpu"), ("model", "Adreno (TM) 643")): 1.0}
    assert got["board_accelerator_frequency_hertz"] == {KEY: 305000000.0}
    assert "board_accelerator_utilization_ratio" not in got
    assert "board_gpu_process_memory_bytes" in got


def test_refused_busy_file_falls_back_to_the_percentage_file(board: Path) -> None:
    (board / "sys/class/kgsl/kgsl-3d0/gpu_busy_percentage").write_text("25 %\n")
    out = run_collector(KgslCollector({}, "snapdragon"), _Refusing(str(board), ("*/gpubusy",)))
    assert samples_of(out.families)["board_accelerator_utilization_ratio"] == {KEY: 0.25}
