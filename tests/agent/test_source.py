"""Sources: sysroot reads, vendor tools with deadlines, and batched remote reads."""

import glob
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.paths import FIXTURES

from boardfleet_agent.errors import NoData
from boardfleet_agent.source import LocalSource, SnapshotSource, batch_script, parse_batch

GENERIC = FIXTURES / "generic"


def test_local_source_reads_and_globs_under_the_sysroot() -> None:
    src = LocalSource(str(GENERIC))
    assert src.read_text("/proc/loadavg").startswith("0.52")
    assert src.glob("/sys/class/thermal/thermal_zone[0-1]") == [
        "/sys/class/thermal/thermal_zone0", "/sys/class/thermal/thermal_zone1"]
    assert src.exists("/proc/device-tree/model")
    with pytest.raises(FileNotFoundError):
        src.read_text("/proc/media-mem")


def _tool(root, name: str, body: str) -> None:
    path = root / "usr" / "bin" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def test_tool_that_prints_forever_is_stopped_after_max_lines(tmp_path) -> None:
    _tool(tmp_path, "hiddrs", 'i=0; while true; do i=$((i+1)); echo "ddrc0[$i.00%]"; done\n')
    started = time.monotonic()
    out = LocalSource(str(tmp_path)).run_tool("hiddrs", [], timeout=60, max_lines=3)
    assert time.monotonic() - started < 30  # cut at 3 lines, long before the timeout
    assert out.splitlines()[:3] == ["ddrc0[1.00%]", "ddrc0[2.00%]", "ddrc0[3.00%]"]


def test_tool_that_hangs_returns_its_output_at_the_deadline(tmp_path) -> None:
    _tool(tmp_path, "slowtool", "echo first; sleep 120\n")
    started = time.monotonic()
    out = LocalSource(str(tmp_path)).run_tool("slowtool", [], timeout=0.5)
    assert out == "first\n"
    assert time.monotonic() - started < 60  # the deadline, not the tool's own end


def test_missing_tool_is_no_data(tmp_path) -> None:
    with pytest.raises(NoData):
        LocalSource(str(tmp_path)).run_tool("hiddrs", [], timeout=1)


def test_batch_script_reads_globbed_files_through_a_real_shell(tmp_path) -> None:
    (tmp_path / "a b").mkdir()
    (tmp_path / "a b" / "one").write_text("no trailing newline")
    (tmp_path / "a b" / "two").write_text("line\n\n")
    nonce = "n0nce"
    # /proc/self/mem is a regular file whose read fails (EIO), even for root.
    script = batch_script([str(tmp_path / "a b") + "/*", "/proc/self/mem",
                           str(tmp_path / "missing*")], nonce)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                         timeout=10).stdout
    files = parse_batch(out, nonce)
    assert files[str(tmp_path / "a b" / "one")] == "no trailing newline"
    assert files[str(tmp_path / "a b" / "two")] == "line\n\n"
    assert files["/proc/self/mem"] is None
    assert len(files) == 3


def test_snapshot_source_globs_like_the_board() -> None:
    src = SnapshotSource({"/proc/1/stat": "x", "/proc/22/stat": "y", "/proc/self/stat": "z",
                          "/sys/class/thermal/thermal_zone0/temp": "1"})
    assert src.glob("/proc/[0-9]*/stat") == ["/proc/1/stat", "/proc/22/stat"]
    assert src.glob("/sys/class/thermal/thermal_zone*") == ["/sys/class/thermal/thermal_zone0"]
    assert src.exists("/sys/class/thermal")
    with pytest.raises(FileNotFoundError):
        src.read_text("/proc/2/stat")


# A small tree: directories, files, hidden names, symlinks to a directory, a file and
# nowhere, and names with glob characters in them.
TREE = {"cpu0/cpufreq/cur": "f", "cpu1/cpufreq/cur": "f", "cpu12/cpufreq": "f",
        "cpufreq/cur": "f", ".hidden/cur": "f", "cpu2/.cur": "f", "a[1]/cur": "f",
        "cpu3": "->cpu0", "cpu4": "->cpu0/cpufreq/cur", "cpu5": "->nowhere", "x": "f"}
PARTS = st.sampled_from(["cpu*", "cpu[0-9]*", "cpu?", "*", ".*", "cpufreq", "cur", ".cur",
                         "*cur", "a[1]", "a[[]1]", "nothing", "[!c]*", "cpu[", "x"])


@settings(max_examples=300, deadline=None)
@given(st.lists(PARTS, min_size=1, max_size=4))
def test_local_source_globs_as_the_glob_module(parts: List[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "board"
        for name, what in TREE.items():
            path = root / "sys" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if what.startswith("->"):
                path.symlink_to(what[2:])
            else:
                path.write_text(what)
        pattern = "/sys/" + "/".join(parts)
        want = sorted(p[len(str(root)):] for p in glob.glob(str(root) + pattern))
        assert LocalSource(str(root)).glob(pattern) == want
