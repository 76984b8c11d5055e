"""A real Prometheus scrapes running agents on fixture boards and stores the contract."""

import time
from contextlib import ExitStack

from support.agent import served_agent
from support.paths import FIXTURES
from support.prom import start_prometheus

# Contract metrics each board's hardware must put into Prometheus.
EXPECTED = {
    "generic": ["board_cpu_seconds_total", "board_memory_available_bytes",
                "board_temperature_celsius"],
    "hi3516ev200": ["board_mmz_free_bytes", "board_mmz_largest_free_block_bytes",
                    "board_mmz_allocation_bytes", "board_ddr_utilization_ratio",
                    "board_vb_pool_free_blocks"],
    "x5": ["board_ion_heap_used_bytes", "board_ion_process_bytes",
           "board_accelerator_utilization_ratio", "board_ddr_utilization_ratio",
           "board_ddr_read_bytes_per_second"],
    "qcs6490": ["board_dmabuf_bytes", "board_accelerator_utilization_ratio",
                "board_ddr_frequency_ratio"],
}


def test_prometheus_stores_contract_metrics_from_every_board() -> None:
    with ExitStack() as stack:
        targets = []
        for board in EXPECTED:
            base, _ = stack.enter_context(
                served_agent(str(FIXTURES / board), "--statsd-listen", "off"))
            targets.append({"targets": [base.split("//")[1]], "labels": {"board": board}})
        prom = stack.enter_context(start_prometheus({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "boardfleet-agent", "static_configs": targets}],
        }))
        deadline = time.monotonic() + 30
        missing = EXPECTED
        while missing and time.monotonic() < deadline:
            time.sleep(0.5)
            missing = {
                board: [m for m in metrics
                        if not prom.query('%s{board="%s"}' % (m, board))]
                for board, metrics in EXPECTED.items()}
            missing = {b: m for b, m in missing.items() if m}
        assert missing == {}
        info = prom.query("board_info")
        platforms = {r["metric"]["board"]: r["metric"]["platform"] for r in info}
        assert platforms == {"generic": "generic", "hi3516ev200": "hisi",
                             "x5": "horizon", "qcs6490": "snapdragon"}
        failing = prom.query("board_collector_success == 0")
        assert failing == []
        ddr = prom.query('board_ddr_utilization_ratio{board="x5"}')
        assert 0 < float(ddr[0]["value"][1]) <= 1
