"""HiSilicon collectors on broken fixture copies, agentless parity, and hiddrs runs."""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from support.agent import run_once
from support.paths import FIXTURES
from support.process import alive
from support.promtool import check_metrics

from boardfleet_agent.collectors.hisi_ddr import HisiDdrCollector
from boardfleet_agent.collectors.mmz import MmzCollector
from boardfleet_agent.registry import Collector
from boardfleet_agent.runner import ScrapeRunner
from boardfleet_agent.source import LocalSource, SnapshotSource, batch_script, parse_batch


def copy_fixture(board: str, dest: Path) -> Path:
    root = dest / board
    shutil.copytree(str(FIXTURES / board), str(root), symlinks=True)
    return root


def success(exposition: str) -> Dict[str, str]:
    out = {}
    for line in exposition.splitlines():
        if line.startswith("board_collector_success{"):
            out[line.split('"')[1]] = line.rsplit(" ", 1)[1]
    return out


def scrape(collectors: List[Collector], src) -> str:
    runner = ScrapeRunner(collectors, src, background=False)
    reg = CollectorRegistry(auto_describe=False)
    reg.register(runner)
    return generate_latest(reg).decode()


def test_broken_files_fail_their_collector_and_the_rest_is_served(tmp_path: Path) -> None:
    root = copy_fixture("hi3516ev200", tmp_path)
    mm = root / "proc/media-mem"
    # cut short inside the block list: no summary line
    mm.write_text("".join(mm.read_text().splitlines(True)[:4]))
    vb = root / "proc/umap/vb"
    vb.write_text(vb.read_text().replace("3110400   3       2       2", "3110400   3  "))
    ive = root / "proc/umap/ive"
    ive.write_text(ive.read_text().replace("689598", "68x598"))
    text = run_once(str(root), "--no-collector.hisi_ddr")
    assert success(text) == {
        "cpu": "1.0", "hisi_npu": "1.0", "hisi_vb": "0.0", "info": "1.0", "loadavg": "1.0",
        "memory": "1.0", "mmz": "1.0", "processes": "1.0", "thermal": "1.0"}
    # a cut media-mem is read up to its cut: the blocks' families, no summary families
    assert 'board_mmz_used_bytes{zone="anonymous"} 2.031616e+06' in text  # 32+332+1620 KB
    assert "board_mmz_reported_total_bytes" not in text
    # a damaged number costs only its row: IVE utilisation stays, its interrupt total goes
    assert 'board_accelerator_utilization_ratio{accelerator="ive",core="0"}' in text
    assert 'board_accelerator_interrupts_total{accelerator="ive"' not in text
    assert 'board_collector_skipped_lines_total{collector="hisi_npu"} 1.0' in text
    assert 'board_load1 1.12' in text
    assert check_metrics(text) == []


@pytest.mark.parametrize("where", ["length=1620KB", "used="])
def test_media_mem_cut_in_a_block_or_in_the_summary_reads_the_same(
        tmp_path: Path, where: str) -> None:
    """Both cuts keep the complete lines; neither fails the collector (issue 14)."""
    root = copy_fixture("hi3516ev200", tmp_path)
    mm = root / "proc/media-mem"
    full = mm.read_text()
    cut_at = full.index(where)
    mm.write_text(full[:cut_at])
    text = scrape([MmzCollector({})], LocalSource(str(root)))
    assert success(text) == {"mmz": "1.0"}
    assert "board_mmz_reported_total_bytes" not in text
    kept = "".join(full[:cut_at].splitlines(True)[:-1])
    used_kb = sum(int(m) for m in re.findall(r"length=(\d+)KB", kept))
    (line,) = [x for x in text.splitlines() if x.startswith('board_mmz_used_bytes{')]
    assert float(line.rsplit(" ", 1)[1]) == used_kb * 1024


def test_garbage_media_mem_and_empty_media_mem(tmp_path: Path) -> None:
    root = copy_fixture("hi3516ev200", tmp_path)
    src = LocalSource(str(root))
    mm = root / "proc/media-mem"
    mm.write_bytes(b"\x00\xff+---ZONE: PHYS(garbage\n")
    text = scrape([MmzCollector({})], src)
    assert success(text) == {"mmz": "0.0"}
    assert "board_mmz_size_bytes{" not in text
    mm.write_text("")  # MMZ module not loaded: absent, not failed
    assert success(scrape([MmzCollector({})], src)) == {}


def test_umap_media_mem_path_and_process_owners() -> None:
    text = scrape([MmzCollector({})], LocalSource(str(FIXTURES / "ss928")))
    assert success(text) == {"mmz": "1.0"}
    assert 'board_mmz_process_bytes{process="sample_svp_nnn"} 3.3816576e+07' in text
    assert 'board_mmz_process_bytes{process="unknown"} 4.194304e+06' in text  # pid 901 gone
    assert 'board_mmz_largest_free_block_bytes{zone="anonymous@0xA0000000"} 5.8720256e+07' in text


@pytest.mark.parametrize("board", ["hi3516ev200", "ss928"])
def test_agentless_snapshot_gives_the_same_mmz_metrics(board: str) -> None:
    root = str(FIXTURES / board)
    nonce = "t3st"
    script = batch_script([root + p for p in MmzCollector.paths], nonce)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    files = {path[len(root):]: text for path, text in parse_batch(out, nonce).items()}
    assert any(p.endswith("media-mem") for p in files)
    # As a probe runs it: owners not named (no /proc/<pid> files in a probe's read).
    local = scrape([MmzCollector({"process_names": False})], LocalSource(root))
    remote = scrape([MmzCollector({"process_names": False})], SnapshotSource(files))
    assert "board_mmz_process_bytes" not in remote
    strip = [line for line in local.splitlines() if "duration" not in line
             and "last_success" not in line]
    assert strip == [line for line in remote.splitlines() if "duration" not in line
                     and "last_success" not in line]
    assert "board_mmz_reported_consistent 1.0" in local


FAKE_DDRS = """#!/bin/sh
# Records its pid and args; notes an overlap if an earlier run is still alive.
dir=$(dirname "$0")/../..
if [ -f "$dir/runs.log" ]; then
  while read -r pid rest; do
    kill -0 "$pid" 2>/dev/null && echo "$pid" >> "$dir/overlaps"
  done < "$dir/runs.log"
fi
echo "$$ $*" >> "$dir/runs.log"
echo "*** Board tools : ver0.0.1_20121120 ***"
echo "===== ddr statistic ====="
while :; do echo "ddrc0[10.00%]"; echo "ddrc0[30.00%]"; sleep 0.05; done
"""


def fake_tool_root(tmp_path: Path, name: str) -> Path:
    (tmp_path / "usr/bin").mkdir(parents=True)
    tool = tmp_path / "usr/bin" / name
    tool.write_text(FAKE_DDRS)
    tool.chmod(0o755)
    return tmp_path


def runs(root: Path) -> List[List[str]]:
    log = root / "runs.log"
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def test_ddr_stops_the_endless_tool_and_passes_settings(tmp_path: Path) -> None:
    root = fake_tool_root(tmp_path, "hiddrs")
    c = HisiDdrCollector({"samples": 4, "freq": 2664, "width": 32})
    started = time.monotonic()
    text = scrape([c], LocalSource(str(root)))
    assert time.monotonic() - started < 5.0
    # drop the first (10 %), average 30, 10, 30, 10
    assert 'board_ddr_utilization_ratio{controller="ddrc0",source="hiddrs"} 0.2' in text
    (run,) = runs(root)
    assert run[1:] == ["-d", "0", "-i", "1", "-f", "2664", "-w", "32"]
    assert not alive(int(run[0]))


def test_bspddrs_gets_milliseconds(tmp_path: Path) -> None:
    root = fake_tool_root(tmp_path, "bspddrs")
    text = scrape([HisiDdrCollector({"interval": 2, "freq": 2664})], LocalSource(str(root)))
    assert 'source="bspddrs"' in text
    assert runs(root)[0][1:] == ["-d", "0", "-i", "2000"]


def test_no_tool_is_absent_not_failed(tmp_path: Path) -> None:
    assert success(scrape([HisiDdrCollector({})], LocalSource(str(tmp_path)))) == {}


def test_background_samplers_never_run_two_tools_at_once(tmp_path: Path) -> None:
    root = fake_tool_root(tmp_path, "hiddrs")
    src = LocalSource(str(root))
    # The detector works: two copies started side by side are caught.
    tool = str(root / "usr/bin/hiddrs")
    first = subprocess.Popen([tool], stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while not runs(root) and time.monotonic() < deadline:
            time.sleep(0.02)
        subprocess.run([tool], stdout=subprocess.DEVNULL, timeout=0.3)
    except subprocess.TimeoutExpired:
        pass
    finally:
        os.killpg(first.pid, 9)
        first.wait()
    assert (root / "overlaps").exists()
    (root / "overlaps").unlink()
    (root / "runs.log").unlink()
    # Two DDR collectors sampled in the background every 50 ms: runs are serialised.
    collectors = [HisiDdrCollector({"samples": 1}), HisiDdrCollector({"samples": 1})]
    runner = ScrapeRunner(collectors, src, {"hisi_ddr": 0.05})
    runner.start()
    try:
        deadline = time.monotonic() + 15
        while len(runs(root)) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
    assert len(runs(root)) >= 6
    assert not (root / "overlaps").exists()
    reg = CollectorRegistry(auto_describe=False)
    reg.register(runner)
    text = generate_latest(reg).decode()
    assert 'board_ddr_utilization_ratio{controller="ddrc0",source="hiddrs"} 0.3' in text


def test_npu_exports_good_files_when_one_is_unreadable(tmp_path: Path) -> None:
    from boardfleet_agent.collectors.hisi_npu import HisiNpuCollector

    root = copy_fixture("ss928", tmp_path)
    (root / "proc/umap/nnie").write_text("[NNIE] Version: [x]\nno tables here\n")
    text = scrape([HisiNpuCollector({})], LocalSource(str(root)))
    assert success(text) == {"hisi_npu": "0.0"}
    assert 'board_accelerator_interrupts_total{accelerator="svp_nnn",core="0"} 181.0' in text
