"""Fleet overview: which board is in trouble, and why, in one table."""

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import table as tb
from grafana_foundation_sdk.models import dashboard as dm

from boardfleet.dashboards import annotations
from boardfleet.dashboards.common import (
    FILTER,
    FLEET_UID,
    MERGE,
    MIB_PER_HOUR,
    above,
    accelerator_used_bytes,
    accelerator_used_ratio,
    below,
    cpu_busy,
    dashboard,
    filter_variables,
    leak_mib_per_hour,
    load_thresholds,
    organize,
    prop,
    query,
    soak_board_variable,
    soak_variable,
    stat,
    steps,
    table,
    table_query,
    timeseries,
    up,
)
from boardfleet.dashboards.layout import Layout
from boardfleet.dashboards.tables import Column, board_link, board_table

F = 'board=~"$board", ' + FILTER
REASON_LABELS = ["zone", "model", "process", "collector", "sensor", "cause"]


def _columns(t: dict[str, float]) -> list[Column]:
    """(column, unit, instant PromQL by board, colour steps) for each table column."""
    proc, zone = leak_mib_per_hour(F)
    mmz_low = 1 - t["mmz_free_ratio"]
    return [
        ("Up", "none", up(F, "board, platform, rack, owner"), below(1)),
        ("Alerts firing", "none",
         'count by (board) (ALERTS{alertstate="firing", %s})'
         " or 0 * max by (board) (board_info{%s})" % (F, F), steps((None, "green"), (1, "red"))),
        ("Uptime", "s", "time() - max by (board) (board_boot_time_seconds{%s})" % F, None),
        ("Reboots", "none", "max by (board) (changes(board_boot_time_seconds{%s}[$__range]))" % F,
         steps((None, "green"), (1, "orange"))),
        ("DDR", "percentunit", "max by (board) (board:board_ddr_utilization_ratio:max1m{%s})" % F,
         above(t["ddr_utilization_ratio"])),
        ("MMZ free (tightest zone)", "percentunit",
         "min by (board) (board:board_mmz_free_bytes:min_ratio{%s})" % F,
         below(t["mmz_free_ratio"])),
        ("MMZ largest block", "bytes",
         "min by (board) (board_mmz_largest_free_block_bytes{%s})" % F,
         below(t["mmz_largest_free_block_bytes"])),
        ("Accel. memory", "bytes", accelerator_used_bytes(F), None),
        ("Accel. memory used", "percentunit", accelerator_used_ratio(F),
         steps((None, "green"), (mmz_low - 0.1, "orange"), (mmz_low, "red"))),
        ("Accel. busy", "percentunit",
         "max by (board) (board_accelerator_utilization_ratio{%s})" % F, None),
        ("CPU", "percentunit", cpu_busy("board", F, "2m"), None),
        ("Temperature", "celsius", "max by (board) (board_temperature_celsius{%s})" % F,
         above(t["temperature_celsius"])),
        ("Latency p99", "s",
         "max by (board) (board_model:board_inference_latency_seconds:p99_5m{%s})" % F,
         above(t["inference_latency_p99_seconds"])),
        ("Leak slope", MIB_PER_HOUR, "max by (board) (%s or %s)" % (proc, zone),
         above(t["leak_bytes_per_hour"] / 1048576)),
        ("Collectors failing", "none",
         "count by (board) (board_collector_success{%s} == 0)"
         " or 0 * max by (board) (board_collector_success{%s})" % (F, F),
         steps((None, "green"), (1, "red"))),
    ]


def _boards(t: dict[str, float]) -> tb.Panel:
    soak = 'max by (board, soak) (boardfleet_soak_active{soak=~"$soak"} == 1)'
    return (board_table(
        "Boards: state and reason", _columns(t), ["platform", "rack", "owner", "soak"],
        "Alerts firing", "One row per board, worst first. Cells turn red at the alert "
        "thresholds of prometheus/thresholds.yml; click a board for its detail page. "
        "Filter a column (soak run, platform) from its header.", 12, (soak,))
        .override_by_name("Up", [prop("mappings", [
            {"type": "value", "options": {"0": {"text": "DOWN"}, "1": {"text": "UP"}}}])]))


def _why() -> tb.Panel:
    """Firing alerts, one row each, with the labels that say where (zone, model ...)."""
    keep = ["board", "alertname", "severity", *REASON_LABELS]
    return (table("Why: firing alerts", table_query('ALERTS{alertstate="firing", %s}' % F),
                  height=6, description="Each firing alert with the zone, model, process, "
                                        "collector or sensor it is about.")
            .with_transformation(MERGE)
            .with_transformation(dm.DataTransformerConfig(
                id_val="filterFieldsByName",
                options={"include": {"pattern": "^(%s)$" % "|".join(keep)}}))
            .with_transformation(organize([], {}, keep))
            .sort_by([cb.TableSortByFieldState().display_name("severity")])
            .override_by_name("board", board_link()))


def _quick(t: dict[str, float]) -> list:
    red_from_1 = steps((None, "green"), (1, "red"))
    return [
        stat("Boards", "none", "count(board_info{%s})" % F),
        stat("Down", "none", "count(%s == 0) or vector(0)" % up(F), red_from_1,
             description="Scrape down, or agentless probe failing (board_probe_success)."),
        stat("Alerts firing", "none", 'count(ALERTS{alertstate="firing", %s}) or vector(0)' % F,
             red_from_1),
        stat("DDR above %d %%" % round(t["ddr_utilization_ratio"] * 100), "none",
             "count(board:board_ddr_utilization_ratio:max1m{%s} > %g) or vector(0)"
             % (F, t["ddr_utilization_ratio"]), red_from_1),
        stat("MMZ below %g %% free" % (t["mmz_free_ratio"] * 100), "none",
             "count(board:board_mmz_free_bytes:min_ratio{%s} < %g) or vector(0)"
             % (F, t["mmz_free_ratio"]), red_from_1),
        stat("Reboots in range", "none",
             "sum(changes(board_boot_time_seconds{%s}[$__range])) or vector(0)" % F,
             steps((None, "green"), (1, "orange"))),
    ]


def _trends(t: dict[str, float]) -> list:
    proc, zone = leak_mib_per_hour(F)
    return [
        timeseries("Leak slope per board", MIB_PER_HOUR,
                   query("max by (board) (%s or %s)" % (proc, zone), "{{board}}"),
                   line=above(t["leak_bytes_per_hour"] / 1048576),
                   description="Fastest-growing process (ION + DMA-BUF + MMZ) or MMZ zone "
                               "over the last hour; the alert fires above the line."),
        timeseries("Accelerator memory used per board", "percentunit",
                   query(accelerator_used_ratio(F), "{{board}}"),
                   line=above(1 - t["mmz_free_ratio"])),
        timeseries("DDR utilisation per board (max over 1m)", "percentunit",
                   query("board:board_ddr_utilization_ratio:max1m{%s}" % F, "{{board}}"),
                   line=above(t["ddr_utilization_ratio"])),
        timeseries("Accelerator busy per board", "percentunit",
                   query("max by (board) (board_accelerator_utilization_ratio{%s})" % F,
                         "{{board}}")),
    ]


def build() -> db.Dashboard:
    t = load_thresholds()
    d = dashboard(FLEET_UID, "boardfleet / Fleet overview",
                  "Which board is in trouble and why: state, reasons and alerts per board.",
                  "now-1h")
    for v in (*filter_variables(), soak_variable(), soak_board_variable()):
        d = d.with_variable(v)
    for a in annotations.alerts('!=""'):
        d = d.annotation(a)
    return (Layout(d).panels(_quick(t)).panels([_why(), _boards(t)])
            .row("Trends", _trends(t), collapsed=False).dashboard)
