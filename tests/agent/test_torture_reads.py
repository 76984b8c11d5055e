"""Torture: reads and parses that are bounded and never give a silent partial total.

Issue 13, points 2 and 5: a file past the read cap or a vendor tool printing without end
fails its collector instead of serving a cut total as good; the MMZ block regex is
linear on corrupt lines; reads never leave the sysroot; label values are bounded.
"""

import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Callable, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.paths import FIXTURES

import boardfleet_agent.source as source_mod
from boardfleet_agent.collectors.mmz import MmzCollector
from boardfleet_agent.errors import ParseError, SourceError
from boardfleet_agent.exposition import MAX_LABEL_VALUE, render
from boardfleet_agent.outcome import run_collector
from boardfleet_agent.parsers.mmz import parse_media_mem
from boardfleet_agent.platform import read_dt
from boardfleet_agent.source import LocalSource

HANG = 60.0  # "did not hang": quadratic parses of the sizes below take many minutes


def finishes(work: Callable[[], object]) -> bool:
    """Whether ``work`` returns or raises ParseError (its one error) within HANG seconds."""
    errors: List[BaseException] = []

    def run() -> None:
        try:
            work()
        except ParseError:
            pass
        except BaseException as e:  # any other error is a defect: reported below
            errors.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(HANG)
    assert errors == []
    return not t.is_alive()


@pytest.fixture
def hisi(tmp_path: Path) -> Path:
    board = tmp_path / "hi3516ev200"
    shutil.copytree(str(FIXTURES / "hi3516ev200"), str(board), symlinks=True)
    return board


def test_file_past_the_cap_fails_the_collector_instead_of_a_cut_total(
        hisi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    media_mem = hisi / "proc" / "media-mem"
    good = run_collector(MmzCollector({}, platform="hisi"), LocalSource(str(hisi)))
    assert good.success and good.families
    # The same file, now larger than the cap: no family from a cut file, a clear error.
    monkeypatch.setattr(source_mod, "MAX_FILE_BYTES", media_mem.stat().st_size - 1)
    cut = run_collector(MmzCollector({}, platform="hisi"), LocalSource(str(hisi)))
    assert not cut.success
    assert "larger than" in cut.error and "media-mem" in cut.error
    assert cut.families == []


def test_file_exactly_at_the_cap_is_read_whole(hisi: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    media_mem = hisi / "proc" / "media-mem"
    monkeypatch.setattr(source_mod, "MAX_FILE_BYTES", media_mem.stat().st_size)
    assert LocalSource(str(hisi)).read_text("/proc/media-mem") == media_mem.read_text()


def _tool(board: Path, name: str, script: str) -> None:
    path = board / "usr" / "bin" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_vendor_tool_printing_without_end_is_capped(tmp_path: Path) -> None:
    # No newline ever: a line count would never stop it, the byte cap does.
    _tool(tmp_path, "hiddrs", "exec tr '\\0' x < /dev/zero\n")
    src = LocalSource(str(tmp_path))
    with pytest.raises(SourceError, match="printed more than"):
        src.run_tool("hiddrs", [], timeout=HANG, max_lines=10)


def test_vendor_tool_output_under_the_cap_is_kept(tmp_path: Path) -> None:
    _tool(tmp_path, "hiddrs", "i=0; while [ $i -lt 3 ]; do echo line $i; i=$((i+1)); done\n")
    out = LocalSource(str(tmp_path)).run_tool("hiddrs", [], timeout=HANG, max_lines=3)
    assert out.splitlines() == ["line 0", "line 1", "line 2"]


def test_symlink_out_of_the_sysroot_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("root:$6$hash\n")
    board = tmp_path / "board"
    (board / "proc" / "device-tree").mkdir(parents=True)
    os.symlink(str(secret), str(board / "proc" / "device-tree" / "model"))
    (board / "proc" / "device-tree" / "compatible").write_text("inside")
    os.symlink("../device-tree/compatible", str(board / "proc" / "device-tree" / "inner"))
    src = LocalSource(str(board))
    with pytest.raises(SourceError, match="out of the sysroot"):
        src.read_text("/proc/device-tree/model")
    assert src.read_text("/proc/device-tree/inner") == "inside"  # links inside still work
    assert read_dt(src, ("/proc/device-tree/model",)) == ""


def test_a_directory_swapped_for_a_symlink_out_is_refused_once_its_trust_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(source_mod.time, "monotonic", lambda: clock[0])
    outside = tmp_path / "host" / "thermal_zone0"
    outside.mkdir(parents=True)
    (outside / "temp").write_text("99000\n")
    zone = tmp_path / "board" / "sys" / "class" / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("41000\n")
    src = LocalSource(str(tmp_path / "board"))
    path = "/sys/class/thermal/thermal_zone0/temp"
    assert src.read_text(path) == "41000\n"
    shutil.rmtree(zone)
    os.symlink(str(outside), str(zone))
    # Within the trust window the directory is not looked at again (the file itself is).
    clock[0] += source_mod.TRUSTED_DIR_SECONDS / 2
    assert src.read_text(path) == "99000\n"
    clock[0] += source_mod.TRUSTED_DIR_SECONDS
    with pytest.raises(SourceError, match="out of the sysroot"):
        src.read_text(path)


def test_a_file_swapped_for_a_symlink_out_is_refused_within_its_directory_trust(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_mod.time, "monotonic", lambda: 100.0)
    (tmp_path / "host-secret").write_text("root:$6$hash\n")
    zone = tmp_path / "board" / "sys" / "class" / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("41000\n")
    (zone / "loop").symlink_to("loop")
    src = LocalSource(str(tmp_path / "board"))
    path = "/sys/class/thermal/thermal_zone0/temp"
    assert src.read_text(path) == "41000\n"  # its directories are trusted now
    (zone / "temp").unlink()
    (zone / "temp").symlink_to(tmp_path / "host-secret")
    with pytest.raises(SourceError, match="out of the sysroot"):
        src.read_text(path)
    (zone / "temp").unlink()
    (zone / "temp").symlink_to("../thermal_zone0/inside")  # a link inside is followed
    (zone / "inside").write_text("42000\n")
    assert src.read_text(path) == "42000\n"
    with pytest.raises(OSError):
        src.read_text("/sys/class/thermal/thermal_zone0/loop")
    with pytest.raises(FileNotFoundError):
        src.read_text("/sys/class/thermal/thermal_zone0/temp1_label")


def test_a_directory_is_trusted_no_longer_than_its_parents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zone checked after its parents were is looked at again when their trust ends:
    one look-up of the zone stands for its whole path."""
    clock = [100.0]
    monkeypatch.setattr(source_mod.time, "monotonic", lambda: clock[0])
    outside = tmp_path / "host" / "thermal"
    (outside / "thermal_zone1").mkdir(parents=True)
    (outside / "thermal_zone1" / "temp").write_text("99000\n")
    thermal = tmp_path / "board" / "sys" / "class" / "thermal"
    for zone in ("thermal_zone0", "thermal_zone1"):
        (thermal / zone).mkdir(parents=True)
        (thermal / zone / "temp").write_text("41000\n")
    src = LocalSource(str(tmp_path / "board"))
    assert src.read_text("/sys/class/thermal/thermal_zone0/temp") == "41000\n"
    clock[0] += source_mod.TRUSTED_DIR_SECONDS * 0.6  # zone1 is checked later
    assert src.read_text("/sys/class/thermal/thermal_zone1/temp") == "41000\n"
    clock[0] += source_mod.TRUSTED_DIR_SECONDS * 0.6  # the parents' trust ended
    shutil.rmtree(str(thermal))
    os.symlink(str(outside), str(thermal))
    with pytest.raises(SourceError, match="out of the sysroot"):
        src.read_text("/sys/class/thermal/thermal_zone1/temp")


def test_long_label_values_are_bounded_and_stay_distinct() -> None:
    from prometheus_client.core import GaugeMetricFamily

    fam = GaugeMetricFamily("board_info", "info", labels=["model"])
    fam.add_metric(["m" * 1_000_000 + "a"], 1)
    fam.add_metric(["m" * 1_000_000 + "b"], 1)
    lines = render([fam]).decode().splitlines()[2:]
    assert len(lines) == 2 and lines[0] != lines[1]
    assert all(len(line) < MAX_LABEL_VALUE + 40 for line in lines)


MMB = '   |-MMB: phys(0x1, 0x2),'
FRAGMENTS = ['length=1KB, ', 'name="x" ', 'name = "', '"', ' ', 'pid[', '1,', ']',
             'kvirt=0x1, ', 'flags=0x0, ', '0x', 'KB', ',', '=', 'length=', 'phys(0x1, 0x2),']


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=8), st.integers(2000, 6000))
def test_corrupt_mmz_lines_parse_in_linear_time(pattern: List[str], repeat: int) -> None:
    """Repeated adversarial fragments, up to about 300 KB a line: parsed or refused."""
    zone = '+---ZONE: PHYS(0x1, 0x2), nBYTES=1KB, NAME="anonymous"\n'
    line = MMB + "".join(pattern) * repeat
    for text in (zone + line + "\n", '+---ZONE: PHYS(0x1, 0x2), nBYTES=1KB, NAME="'
                 + "".join(pattern) * repeat + "\n"):
        assert finishes(lambda t=text: parse_media_mem(t)), "%d bytes hung" % len(text)


def test_the_quadratic_line_from_the_issue_is_parsed_quickly() -> None:
    """The 1 MB version of the corrupt line that took 29 s at 256 KB before the fix."""
    text = ('+---ZONE: PHYS(0x1, 0x2), nBYTES=1KB, NAME="anonymous"\n'
            + MMB + 'length=1KB, name="x" ' * 50000 + "y\n")
    assert finishes(lambda: parse_media_mem(text))


def test_mmz_allocation_names_from_apps_are_capped_with_other() -> None:
    from boardfleet_agent.collectors.mmz import MAX_ALLOCATION_NAMES, zone_families

    lines = ['+---ZONE: PHYS(0x10000000, 0x20000000), nBYTES=262144KB, NAME="anonymous"']
    for i in range(500):  # an app naming every allocation differently
        lines.append('   |-MMB: phys(0x%x, 0x%x), kvirt=0x0, flags=0x0, length=%dKB, '
                     'name="buf%d"' % (0x10000000 + i * 0x2000, 0x10000000 + i * 0x2000
                                       + 0x1000 * (1 + i % 2), 4 * (1 + i % 2), i))
    zones = parse_media_mem("\n".join(lines) + "\n").zones
    fams = {f.name: f for f in zone_families(zones)}
    names = {s.labels["name"]: s.value for s in fams["board_mmz_allocation_bytes"].samples}
    counts = {s.labels["name"]: s.value for s in fams["board_mmz_allocations"].samples}
    assert len(names) == MAX_ALLOCATION_NAMES and "other" in names
    assert sum(names.values()) == sum(b.length_kb * 1024 for b in zones[0].blocks)
    assert sum(counts.values()) == 500
    assert all(v == 8 * 1024 for n, v in names.items() if n != "other")  # the largest kept


def test_procfs_file_past_the_cap_is_refused_by_the_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """procfs reports size 0, so the cap is enforced on the bytes actually read."""
    maps = Path("/proc/self/maps")
    assert maps.stat().st_size == 0
    monkeypatch.setattr(source_mod, "MAX_FILE_BYTES", 100)
    with pytest.raises(SourceError, match="larger than 100 bytes"):
        LocalSource("/").read_text("/proc/self/maps")
