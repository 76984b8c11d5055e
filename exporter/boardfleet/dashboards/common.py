"""Shared pieces of the dashboards: datasource, thresholds and panel builders."""

from pathlib import Path

import yaml
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as pb
from grafana_foundation_sdk.builders import timeseries as tsb
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

# The provisioned datasource (grafana/provisioning/datasources/boardfleet.yml).
DATASOURCE_UID = "boardfleet-prometheus"
DS = dm.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)

FLEET_UID = "boardfleet-fleet"
BOARD_UID = "boardfleet-board"
SOAK_UID = "boardfleet-soak"

REPO = Path(__file__).resolve().parents[3]
THRESHOLDS_FILE = REPO / "prometheus" / "thresholds.yml"

# Dashboard colour steps -> (alert, key) in prometheus/thresholds.yml, the single source.
THRESHOLD_KEYS = {
    "ddr_utilization_ratio": ("BoardDDRBandwidthHigh", "ratio"),
    "mmz_free_ratio": ("BoardMMZExhausted", "free_ratio"),
    "temperature_celsius": ("BoardTemperatureHigh", "celsius"),
    "inference_latency_p99_seconds": ("BoardInferenceLatencyHigh", "p99_seconds"),
    "leak_bytes_per_hour": ("BoardAcceleratorMemoryLeak", "growth_bytes_per_hour"),
}


def load_thresholds(path: Path = THRESHOLDS_FILE) -> dict[str, float]:
    """The alert thresholds the dashboards colour against, read from ``path``."""
    alerts = (yaml.safe_load(path.read_text()) or {}).get("alerts", {})
    values = {}
    for name, (alert, key) in THRESHOLD_KEYS.items():
        if key not in alerts.get(alert, {}):
            raise KeyError("%s: alerts.%s.%s is missing" % (path, alert, key))
        values[name] = float(alerts[alert][key])
    return values


def cpu_busy(by: str, matcher: str, window: str) -> str:
    """Busy fraction of the CPUs, averaged ``by`` labels.

    The scrape jobs use ``honor_labels``, so the counter keeps its own ``mode`` label
    even though service discovery also sets a ``mode`` (agent|agentless) target label.
    """
    return '1 - avg by (%s) (rate(board_cpu_seconds_total{%smode="idle"}[%s]))' % (
        by, matcher, window)


def query(expr: str, legend: str = "", ref: str = "A", instant: bool = False,
          fmt: pm.PromQueryFormat | None = None) -> pb.Dataquery:
    q = pb.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    if legend:
        q = q.legend_format(legend)
    q = q.instant() if instant else q.range()
    return q.format(fmt) if fmt else q


def steps(*pairs: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute threshold steps; the first pair's value is None (the base colour)."""
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in pairs])


def above(limit: float) -> db.ThresholdsConfig:
    """Green, then red from ``limit`` up (e.g. DDR utilisation)."""
    return steps((None, "green"), (limit, "red"))


def below(limit: float) -> db.ThresholdsConfig:
    """Red below ``limit``, green above (e.g. free memory)."""
    return steps((None, "red"), (limit, "green"))


def timeseries(title: str, unit: str, *targets: pb.Dataquery, stacked: bool = False,
               line: db.ThresholdsConfig | None = None, width: int = 12,
               description: str = "") -> tsb.Panel:
    """A time series panel; ``line`` draws its thresholds as dashed lines."""
    p = (tsb.Panel().title(title).datasource(DS).unit(unit).span(width).height(8)
         .targets(list(targets)).fill_opacity(10)
         .legend(cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE)
                 .placement(cm.LegendPlacement.BOTTOM).show_legend(True)))
    if description:
        p = p.description(description)
    if stacked:
        p = p.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL)).fill_opacity(40)
    if line is not None:
        p = p.thresholds(line).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
    return p


def alert_annotation(board_matcher: str) -> db.AnnotationQuery:
    """Firing alerts of the selected boards, as annotations."""
    return (db.AnnotationQuery().name("Firing alerts").datasource(DS).enable(True)
            .icon_color("red")
            .expr('ALERTS{alertstate="firing", board%s}' % board_matcher))


def board_variables(multi: bool) -> list[db.QueryVariable]:
    """``platform`` and ``board`` variables from ``board_info`` (board follows platform)."""
    platform = (db.QueryVariable("platform").label("Platform").datasource(DS)
                .query("label_values(board_info, platform)")
                .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
                .sort(dm.VariableSort.ALPHABETICAL_ASC).include_all(True).all_value(".*"))
    board = (db.QueryVariable("board").label("Board").datasource(DS)
             .query('label_values(board_info{platform=~"$platform"}, board)')
             .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
             .sort(dm.VariableSort.ALPHABETICAL_ASC).multi(multi))
    if multi:
        board = board.include_all(True).all_value(".*")
    return [platform, board]


def dashboard(uid: str, title: str, description: str, time_from: str) -> db.Dashboard:
    """A dashboard with the house defaults: tags, refresh, shared crosshair, links."""
    return (db.Dashboard(title).uid(uid).description(description)
            .tags(["boardfleet"]).refresh("30s").time(time_from, "now")
            .timezone("browser").tooltip(dm.DashboardCursorSync.CROSSHAIR).readonly()
            .link(db.DashboardLink("boardfleet").type(dm.DashboardLinkType.DASHBOARDS)
                  .tags(["boardfleet"]).as_dropdown(True).include_vars(True).keep_time(True)))
