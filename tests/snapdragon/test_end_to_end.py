"""The real agent on a broken copy of the qcs6490 fixture: faults stay in their collector."""

import shutil
import time
import urllib.request
from pathlib import Path
from typing import Dict

import pytest
from support.agent import run_once, served_agent
from support.promtool import check_metrics

from snapdragon.helpers import QCS6490

MINE = ("dmabuf", "dmabuf_process", "kgsl", "qcom_ddr")


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qcs6490-broken") / "board"
    shutil.copytree(QCS6490, root, symlinks=True)
    bufinfo = root / "sys/kernel/debug/dma_buf/bufinfo"
    # One buffer line lost: the footer no longer adds up.
    bufinfo.write_text(bufinfo.read_text().replace(
        "00065536\t00000002\t00080007\t00000001\tsystem\t00041301\t<none>\n", ""))
    (root / "proc/812/fdinfo/32").write_text("ino:\t41022\nsize:\t3110400\x00\x17\n"
                                             "exp_name:\tqcom,system\n")
    (root / "sys/class/kgsl/kgsl/proc/640/kernel").write_text("-\n")  # after GPU families
    (root / "sys/devices/system/cpu/bus_dcvs/DDR/available_frequencies").write_text(
        "200000 547000 76")
    (root / "sys/devices/system/cpu/bus_dcvs/DDR/cur_freq").write_text("")
    return root


def _success(text: str) -> Dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("board_collector_success{"):
            name = line.split('"')[1]
            out[name] = float(line.rsplit(" ", 1)[1])
    return out


def test_once_on_broken_fixture(broken: Path) -> None:
    text = run_once(str(broken))
    ok = _success(text)
    assert {n: ok[n] for n in MINE} == {n: 0.0 for n in MINE}
    assert {n for n, v in ok.items() if v == 1.0} >= {
        "cpu", "memory", "thermal", "info", "loadavg"}
    assert 'board_temperature_celsius{sensor="aoss0-usr",zone="thermal_zone0"} 38.5' in text
    # kgsl failed on a per-process file: the GPU families before it are still served.
    assert 'board_accelerator_frequency_hertz{accelerator="gpu",core="0"} 3.05e+08' in text
    assert 'board_accelerator_info{accelerator="gpu",model="Adreno (TM) 643"} 1.0' in text
    assert "board_dmabuf_bytes{" not in text
    assert check_metrics(text) == []


def test_served_agent_on_broken_fixture(broken: Path) -> None:
    with served_agent(str(broken)) as (base, _proc):
        deadline = time.monotonic() + 10
        text = ""
        for _ in range(100):  # until the background dmabuf_process sample is in
            with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
                text = r.read().decode()
            if "dmabuf_process" in _success(text) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    ok = _success(text)
    assert {n: ok.get(n) for n in MINE} == {n: 0.0 for n in MINE}
    assert ok["thermal"] == 1.0 and ok["cpu"] == 1.0
    assert "board_cpu_seconds_total{" in text


def test_once_on_good_fixture_detects_snapdragon() -> None:
    text = run_once(str(QCS6490))
    assert 'platform="snapdragon"' in text and 'soc="qcom,qcm6490"' in text
    assert set(MINE) <= {n for n, v in _success(text).items() if v == 1.0}
