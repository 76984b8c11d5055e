"""Shared pieces of the dashboards: datasource, thresholds, queries and panel builders."""

from pathlib import Path

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as pb
from grafana_foundation_sdk.builders import stat as sb
from grafana_foundation_sdk.builders import table as tb
from grafana_foundation_sdk.builders import timeseries as tsb
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from boardfleet.thresholds import load

# The provisioned datasource (grafana/provisioning/datasources/boardfleet.yml).
DATASOURCE_UID = "boardfleet-prometheus"
DS = dm.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)

FLEET_UID = "boardfleet-fleet"
BOARD_UID = "boardfleet-board"
SOAK_UID = "boardfleet-soak"

REPO = Path(__file__).resolve().parents[3]
THRESHOLDS_FILE = REPO / "prometheus" / "thresholds.yml"

MIB = 1048576
# Leak rates read in the unit of the alert text (BoardAcceleratorMemoryLeak: "4 MiB/h").
MIB_PER_HOUR = "suffix: MiB/h"

# Dashboard colour steps -> (alert, key) in prometheus/thresholds.yml, the single source.
THRESHOLD_KEYS = {
    "ddr_utilization_ratio": ("BoardDDRBandwidthHigh", "ratio"),
    "mmz_free_ratio": ("BoardMMZExhausted", "free_ratio"),
    "mmz_largest_free_block_bytes": ("BoardMMZExhausted", "largest_free_block_bytes"),
    "temperature_celsius": ("BoardTemperatureHigh", "celsius"),
    "inference_latency_p99_seconds": ("BoardInferenceLatencyHigh", "p99_seconds"),
    "latency_regression_factor": ("BoardInferenceLatencyHigh", "regression_factor"),
    "leak_bytes_per_hour": ("BoardAcceleratorMemoryLeak", "growth_bytes_per_hour"),
}


def load_thresholds(path: Path = THRESHOLDS_FILE) -> dict[str, float]:
    """The alert thresholds the dashboards colour against, read from ``path`` (checked
    by :mod:`boardfleet.thresholds`: a bad file is a ``ThresholdsError``)."""
    alerts = load(path).alerts
    return {name: float(getattr(getattr(alerts, alert), key))
            for name, (alert, key) in THRESHOLD_KEYS.items()}


# ---- PromQL shared by the dashboards -------------------------------------------------

def sel(metric: str, *matchers: str) -> str:
    """``metric{m1, m2}`` with the empty matchers left out."""
    return "%s{%s}" % (metric, ", ".join(m for m in matchers if m))


def cpu_busy(by: str, matcher: str, window: str) -> str:
    """Busy fraction of the CPUs per ``by`` labels, 0..1 whatever the counters do.

    Busy is non-idle time over all time, so a counter that never moves gives NaN (no
    CPU time elapsed) instead of 100 %, and one that runs backwards (a reset to
    ``rate``) cannot push the ratio outside 0..1; ``clamp`` guards the rest. The scrape
    jobs use ``honor_labels``, so the counter keeps its own ``mode`` label.
    """
    busy = sel("board_cpu_seconds_total", matcher, 'mode!~"idle|iowait"')
    every = sel("board_cpu_seconds_total", matcher)
    return ("clamp(sum by (%s) (rate(%s[%s])) / sum by (%s) (rate(%s[%s])), 0, 1)"
            % (by, busy, window, by, every, window))


def up(matcher: str, by: str = "board") -> str:
    """1 when the board answers: the scrape is up and, for agentless boards, the probe
    reached the board (the fleet service answers ``/probe`` even when the board does not).
    """
    return ('min by (%s) (up{%s} or label_replace(board_probe_success{%s},'
            ' "probe", "1", "", ""))' % (by, matcher, matcher))


def accelerator_used_bytes(m: str) -> str:
    """Accelerator memory in use per board: MMZ, else ION/HBMEM heaps, else DMA-BUF."""
    return ("sum by (board) (board_mmz_used_bytes{%s}) or sum by (board)"
            " (board_ion_heap_used_bytes{%s}) or sum by (board) (board_dmabuf_bytes{%s})"
            % (m, m, m))


def accelerator_used_ratio(m: str) -> str:
    """Share of accelerator memory in use: MMZ of the zones' size, ION of the heaps that
    report a size, DMA-BUF (Snapdragon, system memory) of MemTotal."""
    return ("sum by (board) (board_mmz_used_bytes{%s}) / sum by (board) (board_mmz_size_bytes{%s})"
            " or sum by (board) (board_ion_heap_used_bytes{%s} and board_ion_heap_size_bytes{%s})"
            " / sum by (board) (board_ion_heap_size_bytes{%s})"
            " or sum by (board) (board_dmabuf_bytes{%s}) / sum by (board)"
            " (board_memory_total_bytes{%s})" % (m, m, m, m, m, m, m))


def leak_mib_per_hour(m: str, window: str = "1h") -> tuple[str, str]:
    """(per process, per MMZ zone) growth in MiB/h over ``window``.

    The process figure is the alert's recording rule; the zone figure covers HiSilicon
    boards whose MMZ blocks carry no owner PID (Hi3516-class), where only zones grow.
    """
    if window == "1h":
        proc = "board_process:board_accelerator_memory_bytes:deriv1h{%s} * 3600 / %d" % (m, MIB)
    else:
        proc = ("deriv(board_process:board_accelerator_memory_bytes:sum{%s}[%s]) * 3600 / %d"
                % (m, window, MIB))
    zone = "deriv(board_mmz_used_bytes{%s}[%s]) * 3600 / %d" % (m, window, MIB)
    return proc, zone


# ---- panels ----------------------------------------------------------------------------

def query(expr: str, legend: str = "", ref: str = "A", instant: bool = False,
          fmt: pm.PromQueryFormat | None = None) -> pb.Dataquery:
    q = pb.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    if legend:
        q = q.legend_format(legend)
    q = q.instant() if instant else q.range()
    return q.format(fmt) if fmt else q


def table_query(expr: str, ref: str = "A") -> pb.Dataquery:
    """An instant query in table format (one row per series, labels as columns)."""
    return query(expr, ref=ref, instant=True, fmt=pm.PromQueryFormat.TABLE)


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


def prop(id_val: str, value: object) -> dm.DynamicConfigValue:
    return dm.DynamicConfigValue(id_val=id_val, value=value)


def line_props(colours: db.ThresholdsConfig, unit: str) -> list[dm.DynamicConfigValue]:
    """Override properties that give one series its own threshold line and unit."""
    return [prop("unit", unit), prop("thresholds", colours.build()),
            prop("custom.thresholdsStyle", {"mode": "dashed"})]


NO_LINE = [prop("custom.thresholdsStyle", {"mode": "off"})]


def right_axis(unit: str, unstacked: bool = False) -> list[dm.DynamicConfigValue]:
    """Override properties that put one series on a right axis of its own unit."""
    props = [prop("unit", unit), prop("custom.axisPlacement", "right")]
    return [*props, prop("custom.stacking", {"mode": "none"})] if unstacked else props


def timeseries(title: str, unit: str, *targets: pb.Dataquery, stacked: bool = False,
               line: db.ThresholdsConfig | None = None, width: int = 12, height: int = 8,
               description: str = "") -> tsb.Panel:
    """A time series panel; ``line`` draws its thresholds as dashed lines."""
    p = (tsb.Panel().title(title).datasource(DS).unit(unit).span(width).height(height)
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


def stat(title: str, unit: str, expr: str, colours: db.ThresholdsConfig | None = None,
         width: int = 4, height: int = 4, legend: str = "", description: str = "") -> sb.Panel:
    """One big number (instant query), coloured by ``colours``."""
    p = (sb.Panel().title(title).datasource(DS).unit(unit).span(width).height(height)
         .with_target(query(expr, legend, instant=True))
         .color_mode(cm.BigValueColorMode.BACKGROUND)
         .graph_mode(cm.BigValueGraphMode.NONE)
         .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"])))
    if description:
        p = p.description(description)
    return p.thresholds(colours if colours is not None else steps((None, "blue")))


def table(title: str, *targets: pb.Dataquery, width: int = 24, height: int = 8,
          description: str = "") -> tb.Panel:
    p = (tb.Panel().title(title).datasource(DS).unit("none").span(width).height(height)
         .targets(list(targets)).filterable(True))
    return p.description(description) if description else p


def organize(exclude: list[str], rename: dict[str, str] | None = None,
             order: list[str] | None = None) -> dm.DataTransformerConfig:
    """Grafana's "organize fields" transformation."""
    return dm.DataTransformerConfig(id_val="organize", options={
        "excludeByName": dict.fromkeys(exclude, True), "renameByName": rename or {},
        "indexByName": {n: i for i, n in enumerate(order or [])}})


MERGE = dm.DataTransformerConfig(id_val="merge", options={})


# ---- variables -------------------------------------------------------------------------

def variable(name: str, label: str, expr: str, multi: bool = True) -> db.QueryVariable:
    v = (db.QueryVariable(name).label(label).datasource(DS).query(expr)
         .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
         .sort(dm.VariableSort.ALPHABETICAL_ASC))
    return v.multi(True).include_all(True).all_value(".*") if multi else v


def filter_variables() -> list[db.QueryVariable]:
    """``platform``, ``rack`` and ``owner`` filters (target labels on ``board_info``).

    "All" is ``.*``, which also matches boards without a rack or owner label.
    """
    return [variable("platform", "Platform", "label_values(board_info, platform)"),
            variable("rack", "Rack", 'label_values(board_info{platform=~"$platform"}, rack)'),
            variable("owner", "Owner", 'label_values(board_info{platform=~"$platform",'
                                   ' rack=~"$rack"}, owner)')]


FILTER = 'platform=~"$platform", rack=~"$rack", owner=~"$owner"'


def board_variable(multi: bool) -> db.QueryVariable:
    """``board`` from ``board_info``, following the filters."""
    return variable("board", "Board", "label_values(board_info{%s}, board)" % FILTER, multi)


# The soak variable's "All": no run selected, so no board is left out for not being in one.
SOAK_ALL = "__all"
SOAK_SCOPE = (
    "count by (board) (board_info{%s} and on (board)"
    ' (boardfleet_soak_active{soak=~"$soak"} == 1'
    ' or on (board) (label_replace(board_info{%s}, "soak_scope", "$soak", "", "")'
    ' and on (soak_scope) label_replace(vector(1), "soak_scope", "%s", "", ""))))'
    % (FILTER, FILTER, SOAK_ALL))


def soak_variable() -> db.QueryVariable:
    """Soak runs the fleet service reports (``boardfleet_soak_active``, issue 16)."""
    return (variable("soak", "Soak run", "label_values(boardfleet_soak_active, soak)")
            .all_value(SOAK_ALL))


def soak_board_variable() -> db.QueryVariable:
    """``board``: the filtered boards, and only those of the selected soak runs.

    "All" expands to the boards listed (no custom all value), so the soak filter holds.
    """
    return (db.QueryVariable("board").label("Board").datasource(DS)
            .query("query_result(%s)" % SOAK_SCOPE).regex('/board="([^"]+)"/')
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dm.VariableSort.ALPHABETICAL_ASC).multi(True).include_all(True)
            .current(dm.VariableOption(selected=True, text="All", value="$__all")))


def dashboard(uid: str, title: str, description: str, time_from: str) -> db.Dashboard:
    """A dashboard with the house defaults: tags, refresh, shared crosshair, links."""
    return (db.Dashboard(title).uid(uid).description(description)
            .tags(["boardfleet"]).refresh("30s").time(time_from, "now")
            .timezone("browser").tooltip(dm.DashboardCursorSync.CROSSHAIR).readonly()
            .link(db.DashboardLink("boardfleet").type(dm.DashboardLinkType.DASHBOARDS)
                  .tags(["boardfleet"]).as_dropdown(True).include_vars(True).keep_time(True)))
