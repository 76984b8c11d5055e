"""Board detail: memory, DDR, accelerators, CPU, inference and collector health of one board."""

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap as hb
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models import prometheus as pm

from boardfleet.dashboards.common import (
    BOARD_UID,
    DS,
    above,
    alert_annotation,
    board_variables,
    cpu_busy,
    dashboard,
    load_thresholds,
    query,
    timeseries,
)

B = 'board="$board"'
RATE = "$__rate_interval"


def _inference(latency_limit: float) -> list:
    heat = (hb.Panel().title("Inference latency").datasource(DS).unit("s").span(12).height(8)
            .with_target(query("sum by (board, le) (rate(board_inference_latency_seconds_bucket{%s}"
                               "[%s]))" % (B, RATE), legend="{{le}}",
                               fmt=pm.PromQueryFormat.HEATMAP))
            .calculate(False).y_axis(hb.YAxisConfig().unit("s"))
            .color(hb.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME)
                   .scheme("Oranges").steps(64)))
    quantiles = (timeseries(
        "Latency p50 / p99 per model, beside DDR", "s",
        query("board_model:board_inference_latency_seconds:p50_5m{%s}" % B, "{{model}} p50"),
        query("board_model:board_inference_latency_seconds:p99_5m{%s}" % B, "{{model}} p99",
              ref="B"),
        query("max by (board) (board_ddr_utilization_ratio{%s})" % B, "DDR", ref="C"),
        line=above(latency_limit),
        description="Latency quantiles per model (left axis); DDR utilisation (right axis).")
        .override_by_query("C", [dm.DynamicConfigValue(id_val="unit", value="percentunit"),
                                 dm.DynamicConfigValue(id_val="custom.axisPlacement",
                                                       value="right")]))
    return [heat, quantiles]


def build() -> db.Dashboard:
    t = load_thresholds()
    d = dashboard(BOARD_UID, "boardfleet / Board detail",
                  "One board: DDR, MMZ, ION/HBMEM, DMA-BUF, accelerators, CPU, latency.",
                  "now-3h").annotation(alert_annotation('="$board"'))
    for v in board_variables(multi=False):
        d = d.with_variable(v)
    rows: list[tuple[str, list]] = [
        ("DDR", [
            timeseries("DDR utilisation", "percentunit",
                       query("board_ddr_utilization_ratio{%s}" % B,
                             "{{controller}} ({{source}})"),
                       line=above(t["ddr_utilization_ratio"])),
            timeseries("DDR bandwidth per port", "Bps",
                       query("board_ddr_read_bytes_per_second{%s}" % B, "{{port}} read"),
                       query("board_ddr_write_bytes_per_second{%s}" % B, "{{port}} write",
                             ref="B")),
        ]),
        ("MMZ (HiSilicon)", [
            timeseries("MMZ used / free per zone", "bytes",
                       query("board_mmz_used_bytes{%s}" % B, "{{zone}} used"),
                       query("board_mmz_free_bytes{%s}" % B, "{{zone}} free", ref="B"),
                       width=8),
            timeseries("MMZ largest free block", "bytes",
                       query("board_mmz_largest_free_block_bytes{%s}" % B, "{{zone}}"),
                       width=8, description="Fragmentation fails allocations before "
                                            "free space reaches 0."),
            timeseries("MMZ allocations by name", "bytes",
                       query("board_mmz_allocation_bytes{%s}" % B, "{{zone}} {{name}}"),
                       stacked=True, width=8),
        ]),
        ("Carveouts: ION / HBMEM, DMA-BUF, GPU", [
            timeseries("ION / HBMEM per process", "bytes",
                       query("sum by (board, heap, process) (board_ion_process_bytes{%s})" % B,
                             "{{process}} ({{heap}})"), stacked=True, width=8),
            timeseries("DMA-BUF", "bytes",
                       query("board_dmabuf_bytes{%s}" % B, "{{exporter}}"),
                       query("board_dmabuf_process_bytes{%s}" % B, "{{process}}", ref="B"),
                       width=8),
            timeseries("GPU memory per process", "bytes",
                       query("sum by (board, process) (board_gpu_process_memory_bytes{%s})" % B,
                             "{{process}}"), stacked=True, width=8),
        ]),
        ("Accelerators", [
            timeseries("Accelerator utilisation per core", "percentunit",
                       query("board_accelerator_utilization_ratio{%s}" % B,
                             "{{accelerator}} {{core}}"), width=24),
        ]),
        ("CPU and temperature", [
            timeseries("CPU per core", "percentunit",
                       query(cpu_busy("board, cpu", B + ", ", RATE), "cpu{{cpu}}"), width=8),
            timeseries("CPU frequency", "hertz",
                       query("board_cpu_frequency_hertz{%s}" % B, "cpu{{cpu}}"), width=8),
            timeseries("Temperatures", "celsius",
                       query("board_temperature_celsius{%s}" % B, "{{sensor}}"),
                       line=above(t["temperature_celsius"]), width=8),
        ]),
        ("Inference", _inference(t["inference_latency_p99_seconds"])),
        ("Collector health", [
            timeseries("Collector success", "bool",
                       query("board_collector_success{%s}" % B, "{{collector}}"), width=8),
            timeseries("Collector duration", "s",
                       query("board_collector_duration_seconds{%s}" % B, "{{collector}}"),
                       width=8),
            timeseries("Since last success", "s",
                       query("time() - board_collector_last_success_timestamp_seconds{%s}"
                             % B, "{{collector}}"), width=8),
        ]),
    ]
    for title, panels in rows:
        d = d.with_row(db.Row(title))
        for p in panels:
            d = d.with_panel(p)
    return d
