"""Sensor names are read once per sysfs directory, and again for a re-created one.

A zone's ``type`` and a hwmon device's ``name`` and labels are cached under the
directory's identity (issue 18: they cost a scrape about 0.4 ms). A module reload
removes a zone and registers another sensor under the same ``thermal_zoneN`` path:
its name must be served, not the old sensor's.
"""

import os
import shutil
from pathlib import Path
from typing import Dict, List

from support.paths import FIXTURES

from boardfleet_agent.collectors.thermal import ThermalCollector
from boardfleet_agent.outcome import Outcome, run_collector
from boardfleet_agent.source import LocalSource, SnapshotSource

ZONE = "sys/class/thermal/thermal_zone0"
HWMON = "sys/class/hwmon/hwmon1"


class Counting(LocalSource):
    """A LocalSource that keeps the paths it read."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.reads: List[str] = []

    def read_text(self, path: str) -> str:
        self.reads.append(path)
        return super().read_text(path)


def board(tmp_path: Path) -> Path:
    root = tmp_path / "board"
    shutil.copytree(str(FIXTURES / "generic"), str(root), symlinks=True)
    return root


def sensors(outcome: Outcome) -> Dict[str, str]:
    """``{zone: sensor}`` of the temperatures served."""
    assert outcome.success, outcome.error
    return {s.labels["zone"]: s.labels["sensor"] for f in outcome.families
            for s in f.samples}


def test_names_are_read_once_and_temperatures_every_run(tmp_path: Path) -> None:
    src = Counting(str(board(tmp_path)))
    collector = ThermalCollector({})
    first = sensors(run_collector(collector, src))
    assert any(p.endswith("/type") for p in src.reads)
    src.reads.clear()
    assert sensors(run_collector(collector, src)) == first
    assert src.reads and all(p.endswith(("/temp", "_input")) for p in src.reads)


def test_a_zone_recreated_with_another_sensor_serves_the_new_name(tmp_path: Path) -> None:
    root = board(tmp_path)
    src = LocalSource(str(root))
    collector = ThermalCollector({})
    assert sensors(run_collector(collector, src))["thermal_zone0"] == "cpu-thermal"
    # The module goes (its directory with it) and another sensor gets the same number.
    os.rename(str(root / ZONE), str(tmp_path / "unloaded"))
    (root / ZONE).mkdir()
    (root / ZONE / "type").write_text("gpu-thermal\n")
    (root / ZONE / "temp").write_text("51000\n")
    assert sensors(run_collector(collector, src))["thermal_zone0"] == "gpu-thermal"


def test_a_hwmon_device_recreated_serves_its_new_name_and_labels(tmp_path: Path) -> None:
    root = board(tmp_path)
    src = LocalSource(str(root))
    collector = ThermalCollector({})
    before = sensors(run_collector(collector, src))
    assert before["hwmon1_temp1"] == "CMN0-TS0"
    os.rename(str(root / HWMON), str(tmp_path / "unloaded"))
    (root / HWMON).mkdir()
    (root / HWMON / "name").write_text("nvme\n")
    (root / HWMON / "temp1_input").write_text("38000\n")
    (root / HWMON / "temp2_input").write_text("39000\n")
    (root / HWMON / "temp2_label").write_text("Composite\n")
    after = sensors(run_collector(collector, src))
    assert after["hwmon1_temp1"] == "nvme_temp1"  # no label: the chip's name
    assert after["hwmon1_temp2"] == "Composite"


def test_a_zone_that_vanished_and_came_back_is_served_again(tmp_path: Path) -> None:
    root = board(tmp_path)
    src = LocalSource(str(root))
    collector = ThermalCollector({})
    every = sensors(run_collector(collector, src))
    os.rename(str(root / ZONE), str(tmp_path / "away"))
    assert "thermal_zone0" not in sensors(run_collector(collector, src))
    os.rename(str(tmp_path / "away"), str(root / ZONE))
    assert sensors(run_collector(collector, src)) == every


def test_a_snapshot_source_caches_no_names() -> None:
    files = {"/sys/class/thermal/thermal_zone0/type": "cpu-thermal\n",
             "/sys/class/thermal/thermal_zone0/temp": "41000\n"}
    collector = ThermalCollector({})
    assert sensors(run_collector(collector, SnapshotSource(files))) == {
        "thermal_zone0": "cpu-thermal"}
    files["/sys/class/thermal/thermal_zone0/type"] = "gpu-thermal\n"
    assert sensors(run_collector(collector, SnapshotSource(files))) == {
        "thermal_zone0": "gpu-thermal"}
