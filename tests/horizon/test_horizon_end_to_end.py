"""The real agent on the Horizon fixtures: broken files, config, background hrut_ddr."""

import re
import time
from pathlib import Path

from horizon_helpers import fixture_copy, metric_lines
from support.agent import run_once, served_agent
from support.net import wait_http
from support.paths import FIXTURES
from support.promtool import check_metrics


def test_broken_horizon_files_fail_only_their_collectors(tmp_path: Path) -> None:
    root = fixture_copy("x5", tmp_path)
    heap = root / "sys/kernel/debug/ion/heaps/ion_cma"
    heap.write_text(heap.read_text()[:700])
    (root / "sys/devices/system/bpu/ratio").write_text("12x\n")
    stats = root / "sys/kernel/debug/axi_mon/statistics"
    stats.write_text(stats.read_text().replace("Bytes/sec", "B/s", 3))
    text = run_once(str(root))
    assert check_metrics(text) == []
    failed = {m.group(1) for m in re.finditer(
        r'^board_collector_success\{collector="(\w+)"\} 0\.0$', text, re.M)}
    assert failed == {"bpu", "horizon_ddr"}
    # The rest of the scrape is still served, and the cut ION heap keeps its complete lines.
    assert 'board_ion_heap_used_bytes{heap="carveout"} 7.1303168e+07' in text
    assert 'board_ion_heap_size_bytes{heap="ion_cma"} 2.68435456e+08' in text
    assert 'board_ion_heap_used_bytes{heap="ion_cma"}' not in text
    assert metric_lines(text, 'board_temperature_celsius{sensor="BPU"')
    assert metric_lines(text, "board_cpu_seconds_total")


def test_x3_fixture_config_sets_the_ddr_peak() -> None:
    x3 = FIXTURES / "x3"
    text = run_once(str(x3), "--config", str(x3 / "agent.toml"))
    assert 'board_ddr_peak_bytes_per_second{controller="ddr"} 1.28e+10' in text
    (line,) = metric_lines(text, "board_ddr_utilization_ratio")
    assert abs(float(line.split()[-1]) - 5423e6 / 12.8e9) < 1e-9


def test_hrut_ddr_is_sampled_in_the_background(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text("[collectors.horizon_ddr]\ninterval = 0.5\npeak_bytes_per_second = 12.8e9\n")
    with served_agent(str(FIXTURES / "x3"), "--config", str(cfg)) as (base, _proc):
        stamps = []
        deadline = time.monotonic() + 15
        while len(set(stamps)) < 2 and time.monotonic() < deadline:
            text = wait_http(base + "/metrics")
            stamp = metric_lines(
                text, 'board_collector_last_success_timestamp_seconds{collector="horizon_ddr"}')
            stamps += [line.split()[-1] for line in stamp]
            time.sleep(0.3)
        assert len(set(stamps)) >= 2, "hrut_ddr was not sampled twice within 15 s"
        assert 'board_ddr_read_bytes_per_second{port="bpu"} 4.035e+09' in text
        assert 'board_collector_success{collector="horizon_ddr"} 1.0' in text
