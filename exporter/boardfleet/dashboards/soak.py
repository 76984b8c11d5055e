"""Soak test: long-range trends per board (leaks, MMZ low-water mark, DDR peaks, drift)."""

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat as sb

from boardfleet.dashboards.common import (
    DS,
    SOAK_UID,
    above,
    alert_annotation,
    below,
    board_variables,
    dashboard,
    load_thresholds,
    query,
    timeseries,
)

B = 'board=~"$board"'
P99 = "board_model:board_inference_latency_seconds:p99_5m{%s}" % B


def _stat(title: str, unit: str, expr: str, colours: db.ThresholdsConfig) -> sb.Panel:
    """One value per board over the whole time range."""
    return (sb.Panel().title(title).datasource(DS).unit(unit).span(8).height(5)
            .with_target(query(expr, "{{board}}", instant=True)).thresholds(colours))


def build() -> db.Dashboard:
    t = load_thresholds()
    ddr, mmz = t["ddr_utilization_ratio"], t["mmz_free_ratio"]
    d = dashboard(SOAK_UID, "boardfleet / Soak test",
                  "Long runs: memory trends and leak slopes, MMZ low-water mark, DDR peaks, "
                  "latency drift, with firing alerts as annotations.",
                  "now-24h").annotation(alert_annotation('=~"$board"'))
    for v in board_variables(multi=True):
        d = d.with_variable(v)
    panels = [
        _stat("Lowest MMZ free over the range", "percentunit",
              "min by (board) (min_over_time(board:board_mmz_free_bytes:min_ratio{%s}"
              "[$__range]))" % B, below(mmz)),
        _stat("Highest DDR utilisation over the range", "percentunit",
              "max by (board) (max_over_time(board:board_ddr_utilization_ratio:max1m{%s}"
              "[$__range]))" % B, above(ddr)),
        _stat("Latency p99 drift over the range", "s",
              "max by (board) (delta(%s[$__range]))" % P99,
              above(t["inference_latency_p99_seconds"] / 10)),
        timeseries("Accelerator memory per process", "bytes",
                   query("sum by (board, process) (board_ion_process_bytes{%s})" % B,
                         "{{board}} {{process}} ION"),
                   query("board_dmabuf_process_bytes{%s}" % B,
                         "{{board}} {{process}} DMA-BUF", ref="B"),
                   query("board_mmz_process_bytes{%s}" % B, "{{board}} {{process}} MMZ",
                         ref="C"),
                   query("sum by (board, process) (board_gpu_process_memory_bytes{%s})" % B,
                         "{{board}} {{process}} GPU", ref="D")),
        timeseries("Leak slope per process", "Bps",
                   query("board_process:board_accelerator_memory_bytes:deriv1h{%s}" % B,
                         "{{board}} {{process}}"),
                   line=above(t["leak_bytes_per_hour"] / 3600),
                   description="Growth of ION + DMA-BUF + MMZ bytes over the last hour; "
                               "a steady positive slope is a leak."),
        timeseries("Linux memory", "bytes",
                   query("board_memory_available_bytes{%s}" % B, "{{board}} available"),
                   query("board_process_resident_memory_bytes{%s}" % B,
                         "{{board}} {{process}} RSS", ref="B")),
        timeseries("Minimum MMZ free (tightest zone)", "percentunit",
                   query("min_over_time(board:board_mmz_free_bytes:min_ratio{%s}"
                         "[$__interval])" % B, "{{board}}"),
                   line=below(mmz)).interval("1m"),
        timeseries("Maximum DDR utilisation", "percentunit",
                   query("max_over_time(board:board_ddr_utilization_ratio:max1m{%s}"
                         "[$__interval])" % B, "{{board}}"),
                   line=above(ddr)).interval("1m"),
        timeseries("Latency p99 per model", "s", query(P99, "{{board}} {{model}}"),
                   line=above(t["inference_latency_p99_seconds"]), width=24),
    ]
    for p in panels:
        d = d.with_panel(p)
    return d
