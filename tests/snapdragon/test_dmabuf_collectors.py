"""dmabuf (bufinfo) and dmabuf_process (fd walk) collectors on the qcs6490 fixture."""

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import List

import pytest

from boardfleet_agent.collectors.dmabuf import DmaBufCollector
from boardfleet_agent.collectors.dmabuf_process import DmaBufProcessCollector
from boardfleet_agent.collectors.kgsl import KgslCollector
from boardfleet_agent.collectors.qcom_ddr import QcomDdrCollector
from boardfleet_agent.errors import NoData, ParseError
from boardfleet_agent.outcome import run_collector
from boardfleet_agent.registry import all_collectors
from boardfleet_agent.source import LocalSource, SnapshotSource
from snapdragon.helpers import QCS6490, collect, samples_of, snapshot_of

QMMF = 3 * 3110400  # fds 31 and 33 share inode 41021: counted once
QNN = 12582912 + 4194304
WESTON = 1048576 + 65536


def _by_label(got: dict, family: str, label: str) -> dict:
    return {dict(k)[label]: v for k, v in got[family].items()}


def test_bufinfo_per_exporter() -> None:
    got = collect(DmaBufCollector({}, "snapdragon"), LocalSource(str(QCS6490)))
    assert _by_label(got, "board_dmabuf_bytes", "exporter") == {
        "qcom,system": 3 * 3110400, "system": 12582912 + 4194304 + 65536,
        "qcom,secure-pixel": 8388608, "kgsl-3d0": 1048576}
    assert _by_label(got, "board_dmabuf_buffers", "exporter") == {
        "qcom,system": 3, "system": 3, "qcom,secure-pixel": 1, "kgsl-3d0": 1}


def test_bufinfo_absent_is_no_data(tmp_path: Path) -> None:
    with pytest.raises(NoData):
        list(DmaBufCollector({}, "snapdragon").collect(LocalSource(str(tmp_path))))


def test_per_process_deduplicated_by_inode() -> None:
    got = collect(DmaBufProcessCollector({}, "snapdragon"), LocalSource(str(QCS6490)))
    assert _by_label(got, "board_dmabuf_process_bytes", "process") == {
        "qmmf-server": QMMF, "qnn-net-run": QNN, "weston": WESTON}


def test_snapshot_without_readlink_falls_back_to_fdinfo() -> None:
    collector = DmaBufProcessCollector({}, "snapdragon")
    snap = snapshot_of(QCS6490, collector.paths)
    assert not any("/fd/" in p for p in snap.files)  # symlinks are not fetched
    got = collect(collector, snap)
    assert _by_label(got, "board_dmabuf_process_bytes", "process") == {
        "qmmf-server": QMMF, "qnn-net-run": QNN, "weston": WESTON}


def test_cap_puts_the_rest_in_other() -> None:
    src = LocalSource(str(QCS6490))
    got = collect(DmaBufProcessCollector({"max_processes": 1}, "snapdragon"), src)
    assert _by_label(got, "board_dmabuf_process_bytes", "process") == {
        "qnn-net-run": QNN, "other": QMMF + WESTON}
    got = collect(DmaBufProcessCollector({"max_processes": 0}, "snapdragon"), src)
    assert _by_label(got, "board_dmabuf_process_bytes", "process") == {
        "other": QNN + QMMF + WESTON}


def test_old_kernel_anon_inode_links_without_ino(tmp_path: Path) -> None:
    pid = tmp_path / "proc/77"
    (pid / "fd").mkdir(parents=True)
    (pid / "fdinfo").mkdir()
    (pid / "comm").write_text("mm-qcamera-daem\n")
    for fd in ("5", "6"):
        os.symlink("anon_inode:dmabuf", pid / "fd" / fd)
        (pid / "fdinfo" / fd).write_text("pos:\t0\nflags:\t02\nsize:\t4096\ncount:\t2\n"
                                         "exp_name:\tion\n")
    got = collect(DmaBufProcessCollector({}, "snapdragon"), LocalSource(str(tmp_path)))
    # Without an ino: line the fds cannot be matched, so each counts.
    assert _by_label(got, "board_dmabuf_process_bytes", "process") == {
        "mm-qcamera-daem": 8192}


class VanishingSource(LocalSource):
    """The fixture, with processes that exit between listing and reading."""

    def __init__(self, root: str, gone: List[str]) -> None:
        super().__init__(root)
        self.gone = gone

    def _check(self, path: str) -> None:
        if any(path.startswith(g) for g in self.gone):
            raise FileNotFoundError(path)

    def read_text(self, path: str) -> str:
        self._check(path)
        return super().read_text(path)

    def readlink(self, path: str) -> str:
        self._check(path)
        return super().readlink(path)


def test_vanishing_processes_and_fds_are_skipped() -> None:
    # qnn-net-run exits entirely, qmmf-server closes fd 33, weston's name is gone.
    src = VanishingSource(str(QCS6490), ["/proc/1420/", "/proc/812/fd/33",
                                         "/proc/640/comm", "/proc/640/stat"])
    got = collect(DmaBufProcessCollector({}, "snapdragon"), src)
    assert _by_label(got, "board_dmabuf_process_bytes", "process") == {"qmmf-server": QMMF}


def test_snapshot_with_vanished_and_unreadable_fdinfo() -> None:
    snap = snapshot_of(QCS6490, DmaBufProcessCollector.paths)
    files = {p: t for p, t in snap.files.items() if not p.startswith("/proc/1420/comm")}
    files.pop("/proc/1420/stat")
    files.pop("/proc/812/fdinfo/33")  # vanished: skipped
    got = collect(DmaBufProcessCollector({}, "snapdragon"), SnapshotSource(files))
    assert _by_label(got, "board_dmabuf_process_bytes", "process") == {
        "qmmf-server": QMMF, "weston": WESTON}
    # Unreadable on the board (issue 13): the run fails, the readable figures are served.
    files["/proc/812/fdinfo/32"] = None
    out = run_collector(DmaBufProcessCollector({}, "snapdragon"), SnapshotSource(files))
    assert not out.success and "/proc/812/fdinfo/32" in out.error
    assert _by_label(samples_of(out.families), "board_dmabuf_process_bytes", "process") == {
        "qmmf-server": QMMF - 3110400, "weston": WESTON}


def test_malformed_fdinfo_fails_the_collector(tmp_path: Path) -> None:
    root = tmp_path / "board"
    shutil.copytree(QCS6490, root, symlinks=True)
    (root / "proc/1420/fdinfo/7").write_text("ino:\t41100\nsize:\t12M\nexp_name:\tsystem\n")
    with pytest.raises(ParseError):
        list(DmaBufProcessCollector({}, "snapdragon").collect(LocalSource(str(root))))


def test_no_dmabuf_anywhere_is_no_data(tmp_path: Path) -> None:
    (tmp_path / "proc/1/fd").mkdir(parents=True)
    os.symlink("socket:[1]", tmp_path / "proc/1/fd/3")
    with pytest.raises(NoData):
        list(DmaBufProcessCollector({}, "generic").collect(LocalSource(str(tmp_path))))


def test_live_proc_walk_with_processes_coming_and_going() -> None:
    """The real /proc of this machine while short-lived processes start and exit."""
    stop = threading.Event()

    def churn() -> None:
        deadline = time.monotonic() + 10
        for _ in range(200):
            if stop.is_set() or time.monotonic() > deadline:
                return
            subprocess.run(["true"], check=False)

    t = threading.Thread(target=churn, daemon=True)
    t.start()
    try:
        collector = DmaBufProcessCollector({}, "generic")
        for _ in range(3):
            out = run_collector(collector, LocalSource("/"))
            # Absent without dma-bufs; failed, naming what refused, where some processes
            # may not be inspected (a container, SELinux, not root): never an exception
            # from a process or fd that exits mid-walk.
            assert out.success or "refused reads" in out.error, out.error
            assert all(v >= 0 for f in out.families for v in (s.value for s in f.samples))
    finally:
        stop.set()
        t.join(15)


def test_registration_and_platforms() -> None:
    reg = all_collectors()
    assert reg["dmabuf_process"] is DmaBufProcessCollector
    assert DmaBufProcessCollector.platforms == frozenset()
    assert DmaBufProcessCollector.background
    assert DmaBufProcessCollector.default_interval == 15
    for cls in (DmaBufCollector, KgslCollector, QcomDdrCollector):
        assert reg[cls.name] is cls
        assert cls.platforms == frozenset({"snapdragon"})
