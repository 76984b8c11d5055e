"""Fleet overview: every board in one table, coloured against the alert thresholds."""

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import table as tb
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from boardfleet.dashboards.common import (
    BOARD_UID,
    DS,
    FLEET_UID,
    above,
    alert_annotation,
    below,
    cpu_busy,
    dashboard,
    load_thresholds,
    query,
    steps,
)

BOARD_LINK = ("/d/%s/board-detail?var-platform=${__data.fields.platform}"
              "&var-board=${__value.raw}&${__url_time_range}" % BOARD_UID)


def _columns(t: dict[str, float]) -> list[tuple[str, str, str, db.ThresholdsConfig | None]]:
    """(column, unit, instant PromQL by board, colour steps) for each table column."""
    return [
        ("Up", "none", 'max by (board, platform) (up{board!=""})', below(1)),
        ("DDR", "percentunit", "max by (board) (board:board_ddr_utilization_ratio:max1m)",
         above(t["ddr_utilization_ratio"])),
        ("MMZ free", "percentunit", "min by (board) (board:board_mmz_free_bytes:min_ratio)",
         below(t["mmz_free_ratio"])),
        ("Accelerator memory", "bytes",
         "sum by (board) (board_mmz_used_bytes)"
         " or sum by (board) (board_ion_heap_used_bytes)"
         " or sum by (board) (board_gpu_process_memory_bytes)", None),
        ("CPU", "percentunit",
         cpu_busy("board", "", "2m"), None),
        ("Temperature", "celsius", "max by (board) (board_temperature_celsius)",
         above(t["temperature_celsius"])),
        ("Latency p99", "s",
         "max by (board) (board_model:board_inference_latency_seconds:p99_5m)",
         above(t["inference_latency_p99_seconds"])),
        ("Firing alerts", "none",
         'count by (board) (ALERTS{alertstate="firing", board!=""})'
         ' or 0 * max by (board) (up{board!=""})', steps((None, "green"), (1, "red"))),
    ]


def build() -> db.Dashboard:
    cols = _columns(load_thresholds())
    refs = [chr(ord("A") + i) for i in range(len(cols))]
    table = (tb.Panel().title("Boards").datasource(DS).unit("none").span(24).height(20)
             .description("One row per board; click a board for its detail dashboard. "
                          "Cells turn red at the alert thresholds.")
             .targets([query(expr, ref=ref, instant=True, fmt=pm.PromQueryFormat.TABLE)
                       for ref, (_, _, expr, _) in zip(refs, cols, strict=True)])
             .with_transformation(dm.DataTransformerConfig(
                 id_val="joinByField", options={"byField": "board", "mode": "outer"}))
             .with_transformation(dm.DataTransformerConfig(
                 id_val="filterFieldsByName",
                 options={"include": {"pattern": "^(board|platform|Value #[A-Z])$"}}))
             .with_transformation(dm.DataTransformerConfig(
                 id_val="organize",
                 options={"renameByName": {"Value #%s" % r: c[0]
                                           for r, c in zip(refs, cols, strict=True)},
                          "indexByName": {n: i for i, n in enumerate(
                              ["board", "platform", *("Value #%s" % r for r in refs)])}}))
             .sort_by([cb.TableSortByFieldState().display_name("Firing alerts").desc(True)])
             .override_by_name("board", [dm.DynamicConfigValue(
                 id_val="links", value=[{"title": "Board detail", "url": BOARD_LINK}])]))
    for name, unit, _, colours in cols:
        props = [dm.DynamicConfigValue(id_val="unit", value=unit)]
        if colours is not None:
            props += [dm.DynamicConfigValue(id_val="thresholds", value=colours.build()),
                      dm.DynamicConfigValue(id_val="custom.cellOptions",
                                            value={"type": "color-background"})]
        table = table.override_by_name(name, props)
    table = table.override_by_name("Up", [dm.DynamicConfigValue(id_val="mappings", value=[
        {"type": "value", "options": {"0": {"text": "DOWN"}, "1": {"text": "UP"}}}])])
    return (dashboard(FLEET_UID, "boardfleet / Fleet overview",
                      "Every board: platform, health, accelerator memory, DDR, latency, alerts.",
                      "now-1h")
            .annotation(alert_annotation('!=""'))
            .with_panel(table))
