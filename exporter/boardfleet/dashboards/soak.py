"""Soak test: a verdict table per board over the range, then one repeated row per board."""

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import table as tb

from boardfleet.dashboards import annotations
from boardfleet.dashboards.common import (
    FILTER,
    MIB,
    MIB_PER_HOUR,
    SOAK_UID,
    above,
    below,
    dashboard,
    filter_variables,
    leak_mib_per_hour,
    load_thresholds,
    query,
    soak_board_variable,
    soak_variable,
    steps,
    timeseries,
    up,
)
from boardfleet.dashboards.layout import Layout
from boardfleet.dashboards.tables import Column, board_table

ALL = 'board=~"$board", %s' % FILTER
ONE = 'board="$board"'   # inside the row repeated per board
# Baseline of the drift: the median p99 of the first 30 minutes of the displayed range
# (set the range to the soak window). A spike that recovered still shows as its peak.
BASELINE = "30m"


def _p99(m: str) -> str:
    return "board_model:board_inference_latency_seconds:p99_5m{%s}" % m


def _verdict_columns(t: dict[str, float]) -> list[Column]:
    proc, zone = leak_mib_per_hour(ALL, "$__range")
    return [
        ("Up now", "none", up(ALL, "board, platform"), below(1)),
        ("Reboots", "none", "max by (board) (changes(board_boot_time_seconds{%s}[$__range]))"
         % ALL, steps((None, "green"), (1, "orange"))),
        ("Alerts fired", "none",
         'count by (board) (count by (board, alertname) (max_over_time(ALERTS{alertstate='
         '"firing", %s}[$__range])))' % ALL, steps((None, "green"), (1, "red"))),
        ("Lowest MMZ free", "percentunit",
         "min by (board) (min_over_time(board:board_mmz_free_bytes:min_ratio{%s}[$__range]))"
         % ALL, below(t["mmz_free_ratio"])),
        ("Smallest MMZ largest block", "bytes",
         "min by (board) (min_over_time(board_mmz_largest_free_block_bytes{%s}[$__range]))"
         % ALL, below(t["mmz_largest_free_block_bytes"])),
        ("Highest DDR", "percentunit",
         "max by (board) (max_over_time(board:board_ddr_utilization_ratio:max1m{%s}"
         "[$__range]))" % ALL, above(t["ddr_utilization_ratio"])),
        ("Growth over range", MIB_PER_HOUR, "max by (board) (%s or %s)" % (proc, zone),
         above(t["leak_bytes_per_hour"] / MIB)),
        ("Worst p99", "s", "max by (board) (max_over_time(%s[$__range]))" % _p99(ALL),
         above(t["inference_latency_p99_seconds"])),
        ("p99 peak / median", "none",
         "max by (board) (max_over_time(%s[$__range]) / quantile_over_time(0.5, %s[$__range]))"
         % (_p99(ALL), _p99(ALL)),
         steps((None, "green"), (t["latency_regression_factor"], "red"))),
    ]


def _verdict(t: dict[str, float]) -> tb.Panel:
    return board_table("Verdict per board over the range", _verdict_columns(t), ["platform"],
                       "Alerts fired", "Set the time range to the soak run (its window is "
                       "shaded). Red cells break a threshold of prometheus/thresholds.yml "
                       "at some point of the run.", 8)


def _per_board(t: dict[str, float]) -> list:
    proc, zone = leak_mib_per_hour(ONE)
    return [
        timeseries("$board: accelerator memory", "bytes",
                   query("board_process:board_accelerator_memory_bytes:sum{%s}" % ONE,
                         "{{process}} (ION + DMA-BUF + MMZ)"),
                   query("sum by (board, process) (board_gpu_process_memory_bytes{%s})" % ONE,
                         "{{process}} GPU", ref="B"),
                   query("board_mmz_used_bytes{%s}" % ONE, "MMZ zone {{zone}} used", ref="C"),
                   width=8, description="Per process where the board names owners; per MMZ "
                                        "zone always (Hi3516-class boards name none)."),
        timeseries("$board: leak slope (1h)", MIB_PER_HOUR,
                   query(proc, "{{process}}"), query(zone, "MMZ zone {{zone}}", ref="B"),
                   line=above(t["leak_bytes_per_hour"] / MIB), width=8),
        timeseries("$board: p99 drift against the run start", "percentunit",
                   query("%s / on (board, model) group_left () quantile_over_time(0.5, %s[%s]"
                         " @ start() offset -%s) - 1" % (_p99(ONE), _p99(ONE), BASELINE, BASELINE),
                         "{{model}}"),
                   line=above(t["latency_regression_factor"] - 1), width=8,
                   description="p99 relative to its median over the first %s of the range; "
                               "the line is the alert's regression factor." % BASELINE),
        timeseries("$board: tightest MMZ zone free", "percentunit",
                   query("board:board_mmz_free_bytes:min_ratio{%s}" % ONE, "free"),
                   line=below(t["mmz_free_ratio"]), width=8),
        timeseries("$board: DDR utilisation (max 1m)", "percentunit",
                   query("board:board_ddr_utilization_ratio:max1m{%s}" % ONE, "DDR"),
                   line=above(t["ddr_utilization_ratio"]), width=8),
        timeseries("$board: latency p99 per model", "s", query(_p99(ONE), "{{model}}"),
                   line=above(t["inference_latency_p99_seconds"]), width=8),
    ]


def build() -> db.Dashboard:
    t = load_thresholds()
    d = dashboard(SOAK_UID, "boardfleet / Soak test",
                  "Long runs: a verdict per board, then per board its memory and leak "
                  "slopes, MMZ low-water mark, DDR peaks and latency drift; soak windows "
                  "shaded, alerts annotated.", "now-24h")
    for v in (*filter_variables(), soak_variable(), soak_board_variable()):
        d = d.with_variable(v)
    d = d.annotation(annotations.soak_runs('=~"$board"'))
    for a in annotations.alerts('=~"$board"'):
        d = d.annotation(a)
    return (Layout(d).panels([_verdict(t)])
            .row("Board $board", _per_board(t), collapsed=False, repeat="board")
            .dashboard)
