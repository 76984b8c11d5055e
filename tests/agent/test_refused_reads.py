"""Issue 13: files that refuse reads fail the run; the readable figures are still served.

Before, an unreadable thermal zone or ``/proc/<pid>/fd`` was dropped with
``board_collector_success`` 1: a soak showed fewer sensors or less dma-buf memory as
healthy. The policy (docs/metrics.md, "Files are read independently"): the run is
marked failed, every readable figure is served; a file that vanished is skipped.
"""

import errno
import os
import shutil
from pathlib import Path
from typing import Dict, List, Tuple

from support.paths import FIXTURES

from boardfleet_agent.collectors.dmabuf_process import DmaBufProcessCollector
from boardfleet_agent.collectors.thermal import ThermalCollector
from boardfleet_agent.outcome import Outcome, run_collector
from boardfleet_agent.source import LocalSource, SnapshotSource

QCS6490 = FIXTURES / "qcs6490"
ZONE = "sys/class/thermal/thermal_zone1"


def board(tmp_path: Path) -> Path:
    root = tmp_path / "board"
    shutil.copytree(str(QCS6490), str(root), symlinks=True)
    return root


def temperatures(outcome: Outcome) -> Dict[str, float]:
    return {s.labels["zone"]: s.value for f in outcome.families for s in f.samples
            if f.name == "board_temperature_celsius"}


def dmabuf_bytes(outcome: Outcome) -> Dict[str, float]:
    return {s.labels["process"]: s.value for f in outcome.families for s in f.samples}


def test_a_thermal_zone_that_refuses_reads_fails_the_run(tmp_path: Path) -> None:
    root = board(tmp_path)
    every = temperatures(run_collector(ThermalCollector({}), LocalSource(str(root))))
    assert "thermal_zone1" in every
    temp = root / ZONE / "temp"
    temp.unlink()
    temp.mkdir()  # there, but not a file the agent can read (real LocalSource path)
    out = run_collector(ThermalCollector({}), LocalSource(str(root)))
    assert not out.success and not out.absent
    assert "thermal_zone1/temp" in out.error
    rest = dict(every)
    del rest["thermal_zone1"]
    assert temperatures(out) == rest  # every other sensor still served


def test_a_disabled_zone_that_refuses_reads_and_a_vanished_zone_are_skipped(
        tmp_path: Path) -> None:
    root = board(tmp_path)
    every = temperatures(run_collector(ThermalCollector({}), LocalSource(str(root))))
    (root / ZONE / "temp").unlink()
    (root / ZONE / "temp").mkdir()
    (root / ZONE / "mode").write_text("disabled\n")  # the kernel gave up on the sensor
    shutil.rmtree(str(root / "sys/class/thermal/thermal_zone2"))
    out = run_collector(ThermalCollector({}), LocalSource(str(root)))
    assert out.success, out.error
    assert set(temperatures(out)) == set(every) - {"thermal_zone1", "thermal_zone2"}


class Refusing(LocalSource):
    """The fixture where some paths answer with an errno, as for a non-root agent."""

    def __init__(self, root: str, refused: List[Tuple[str, int]]) -> None:
        super().__init__(root)
        self.refused = refused

    def _refuse(self, path: str) -> None:
        for prefix, code in self.refused:
            if path.startswith(prefix):
                raise OSError(code, os.strerror(code), path)

    def listdir(self, path: str) -> List[str]:
        self._refuse(path)
        return super().listdir(path)

    def readlink(self, path: str) -> str:
        self._refuse(path)
        return super().readlink(path)

    def read_text(self, path: str) -> str:
        self._refuse(path)
        return super().read_text(path)


def test_an_fd_directory_that_refuses_listing_fails_the_run() -> None:
    every = dmabuf_bytes(run_collector(DmaBufProcessCollector({}), LocalSource(str(QCS6490))))
    assert {"qnn-net-run", "qmmf-server"} <= set(every)
    src = Refusing(str(QCS6490), [("/proc/1420/fd", errno.EACCES)])
    out = run_collector(DmaBufProcessCollector({}), src)
    assert not out.success and "/proc/1420/fd: Permission denied" in out.error
    served = dict(every)
    del served["qnn-net-run"]
    assert dmabuf_bytes(out) == served


def test_refused_fd_links_and_fdinfo_fail_the_run_vanished_ones_do_not() -> None:
    every = dmabuf_bytes(run_collector(DmaBufProcessCollector({}), LocalSource(str(QCS6490))))
    gone = Refusing(str(QCS6490), [("/proc/812/fd/33", errno.ENOENT),
                                   ("/proc/1420/fd", errno.ESRCH)])
    out = run_collector(DmaBufProcessCollector({}), gone)
    assert out.success, out.error  # a closed fd and an exited process are no fault
    for refused in ("/proc/812/fd/", "/proc/812/fdinfo/"):
        src = Refusing(str(QCS6490), [(refused, errno.EIO)])
        out = run_collector(DmaBufProcessCollector({}), src)
        assert not out.success and refused in out.error
        assert dmabuf_bytes(out) == {k: v for k, v in every.items() if k != "qmmf-server"}


def test_agentless_snapshot_fetches_mode_and_judges_the_same() -> None:
    """A batched read marks a file it could not read None; ``mode`` is fetched with it."""
    assert "/sys/class/thermal/thermal_zone*/mode" in ThermalCollector.paths
    files = {"/sys/class/thermal/thermal_zone0/type": "cpu-0-0-usr\n",
             "/sys/class/thermal/thermal_zone0/temp": "41000\n",
             "/sys/class/thermal/thermal_zone1/type": "modem-usr\n",
             "/sys/class/thermal/thermal_zone1/temp": None}
    out = run_collector(ThermalCollector({}), SnapshotSource(files))
    assert not out.success and temperatures(out) == {"thermal_zone0": 41.0}
    files["/sys/class/thermal/thermal_zone1/mode"] = "disabled\n"
    out = run_collector(ThermalCollector({}), SnapshotSource(files))
    assert out.success and temperatures(out) == {"thermal_zone0": 41.0}
