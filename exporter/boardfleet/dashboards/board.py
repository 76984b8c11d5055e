"""Board detail: a status header, the essentials, then one collapsed row per concern."""

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap as hb
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models import prometheus as pm

from boardfleet.dashboards import annotations
from boardfleet.dashboards.common import (
    BOARD_UID,
    DS,
    MERGE,
    MIB,
    MIB_PER_HOUR,
    NO_LINE,
    above,
    accelerator_used_ratio,
    below,
    board_variable,
    cpu_busy,
    dashboard,
    filter_variables,
    leak_mib_per_hour,
    line_props,
    load_thresholds,
    organize,
    prop,
    query,
    right_axis,
    stat,
    steps,
    table,
    table_query,
    timeseries,
    up,
    variable,
)
from boardfleet.dashboards.layout import Layout

B = 'board="$board"'
RATE = "$__rate_interval"
P99 = "board_model:board_inference_latency_seconds:p99_5m{%s}" % B
IDENTITY = ["platform", "soc", "model", "kernel", "firmware_version", "agent_version",
            "rack", "owner"]


def _header(t: dict[str, float]) -> list:
    """Identity, up, uptime, firing alerts; then quick gauges of the headline figures."""
    identity = (table("Identity", table_query("board_info{%s}" % B), width=10, height=4)
                .with_transformation(dm.DataTransformerConfig(
                    id_val="filterFieldsByName",
                    options={"include": {"pattern": "^(%s)$" % "|".join(IDENTITY)}}))
                .with_transformation(organize([], {"agent_version": "agent",
                                                   "firmware_version": "firmware"}, IDENTITY)))
    alerts = (table("Firing alerts", table_query('ALERTS{alertstate="firing", %s}' % B),
                    width=8, height=4)
              .with_transformation(MERGE)
              .with_transformation(dm.DataTransformerConfig(
                  id_val="filterFieldsByName", options={"include": {
                      "pattern": "^(alertname|severity|zone|model|process|collector|sensor"
                                 "|cause)$"}})))
    return [
        identity,
        stat("Up", "none", up(B), below(1), width=2, height=4)
        .mappings([dm.ValueMap(options={"0": dm.ValueMappingResult(text="DOWN"),
                                        "1": dm.ValueMappingResult(text="UP")})]),
        stat("Uptime", "s", "time() - board_boot_time_seconds{%s}" % B, width=4, height=4),
        alerts,
        stat("DDR (max 1m)", "percentunit", "board:board_ddr_utilization_ratio:max1m{%s}" % B,
             above(t["ddr_utilization_ratio"])),
        stat("Accelerator memory used", "percentunit", accelerator_used_ratio(B),
             above(1 - t["mmz_free_ratio"])),
        stat("MMZ free (tightest zone)", "percentunit",
             "board:board_mmz_free_bytes:min_ratio{%s}" % B, below(t["mmz_free_ratio"])),
        stat("CPU", "percentunit", cpu_busy("board", B, "2m"),
             steps((None, "green"), (0.9, "orange"))),
        stat("Hottest sensor", "celsius", "max by (board) (board_temperature_celsius{%s})" % B,
             above(t["temperature_celsius"])),
        stat("Worst p99", "s", "max by (board) (%s)" % P99,
             above(t["inference_latency_p99_seconds"])),
    ]


def _essentials(t: dict[str, float]) -> list:
    proc, zone = leak_mib_per_hour(B)
    latency = (timeseries(
        "Latency p50 / p99 per model, beside DDR", "s",
        query("board_model:board_inference_latency_seconds:p50_5m{%s}" % B, "{{model}} p50"),
        query(P99, "{{model}} p99", ref="B"),
        query("board:board_ddr_utilization_ratio:max1m{%s}" % B, "DDR", ref="C"),
        line=above(t["inference_latency_p99_seconds"]),
        description="Latency quantiles per model (left axis, p99 line = the alert); DDR "
                    "utilisation on the right axis with its own 40 % line.")
        .override_by_query("A", NO_LINE)
        .override_by_query("C", [*line_props(above(t["ddr_utilization_ratio"]), "percentunit"),
                                 prop("custom.axisPlacement", "right")]))
    memory = timeseries(
        "Accelerator memory used", "percentunit",
        query("1 - board_zone:board_mmz_free_bytes:ratio{%s}" % B, "MMZ {{zone}}"),
        query("board_ion_heap_used_bytes{%s} / board_ion_heap_size_bytes{%s}" % (B, B),
              "ION {{heap}}", ref="B"),
        query("sum by (board) (board_dmabuf_bytes{%s}) / sum by (board)"
              " (board_memory_total_bytes{%s})" % (B, B), "DMA-BUF of RAM", ref="C"),
        line=above(1 - t["mmz_free_ratio"]),
        description="MMZ per zone (HiSilicon), ION/HBMEM heaps with a known size "
                    "(Horizon), DMA-BUF of system RAM (Snapdragon).")
    leak = timeseries(
        "Leak slope (1h)", MIB_PER_HOUR,
        query(proc, "{{process}}"), query(zone, "MMZ zone {{zone}}", ref="B"),
        line=above(t["leak_bytes_per_hour"] / MIB),
        description="Growth over the last hour, in the alert's unit. Zones cover Hi3516-"
                    "class boards whose MMZ blocks name no owner process.")
    cpu = (timeseries(
        "CPU busy and temperature", "percentunit",
        query(cpu_busy("board", B, RATE), "CPU busy"),
        query("board_temperature_celsius{%s}" % B, "{{sensor}}", ref="B"))
        .override_by_query("B", [*line_props(above(t["temperature_celsius"]), "celsius"),
                                 prop("custom.axisPlacement", "right")]))
    return [latency, memory, leak, cpu]


def _inference() -> list:
    heat = (hb.Panel().title("Latency heatmap: $model").datasource(DS).unit("s").span(24)
            .height(8).repeat("model").repeat_direction("h")
            .max_per_row(2)
            .with_target(query("sum by (le) (rate(board_inference_latency_seconds_bucket"
                               '{%s, model=~"$model"}[%s]))' % (B, RATE), legend="{{le}}",
                               fmt=pm.PromQueryFormat.HEATMAP))
            .calculate(False).y_axis(hb.YAxisConfig().unit("s"))
            .color(hb.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME)
                   .scheme("Oranges").steps(64)))
    return [
        heat,
        timeseries("Model load time", "s",
                   query("board_model_load_seconds{%s}" % B, "{{model}} {{stage}}"), width=8),
        timeseries("Model memory increase at load", "bytes",
                   query("board_model_memory_increase_bytes{%s}" % B, "{{model}} {{stage}}"),
                   width=8),
        (timeseries("FPS and log-tail latency", "none",
                    query("board_inference_fps{%s}" % B, "{{model}} FPS"),
                    query("board_inference_average_latency_seconds{%s}" % B,
                          "{{model}} avg latency", ref="B"), width=8)
         .override_by_query("B", right_axis("s"))),
        timeseries("Frames and rejected StatsD lines", "none",
                   query("rate(board_inference_frames_total{%s}[%s])" % (B, RATE),
                         "{{model}} frames/s"),
                   query("rate(board_inference_rejected_total{%s}[%s])" % (B, RATE),
                         "rejected {{reason}}/s", ref="B"), width=24),
    ]


def _clocks(t: dict[str, float]) -> list:
    return [
        timeseries("DDR utilisation per controller (measured)", "percentunit",
                   query("board_ddr_utilization_ratio{%s}" % B, "{{controller}} ({{source}})"),
                   line=above(t["ddr_utilization_ratio"]), width=8),
        timeseries("DDR bandwidth per port", "Bps",
                   query("board_ddr_read_bytes_per_second{%s}" % B, "{{port}} read"),
                   query("board_ddr_write_bytes_per_second{%s}" % B, "{{port}} write", ref="B"),
                   query("board_ddr_peak_bytes_per_second{%s}" % B, "peak {{controller}}",
                         ref="C"), width=8),
        (timeseries("DDR clock (Snapdragon)", "percentunit",
                    query("board_ddr_frequency_ratio{%s}" % B, "{{controller}} of max clock"),
                    query("board_ddr_frequency_hertz{%s}" % B, "{{controller}}", ref="B"),
                    width=8, description="Current / max DDR clock: a frequency, not traffic; "
                                         "the 40 % alert never reads it.")
         .override_by_query("B", right_axis("hertz"))),
        timeseries("Accelerator utilisation", "percentunit",
                   query("board_accelerator_utilization_ratio{%s}" % B,
                         "{{accelerator}} {{core}}"), width=8),
        timeseries("Accelerator clock (throttling)", "hertz",
                   query("board_accelerator_frequency_hertz{%s}" % B, "{{accelerator}} {{core}}"),
                   width=8),
        timeseries("CPU clock (throttling)", "hertz",
                   query("board_cpu_frequency_hertz{%s}" % B, "cpu{{cpu}}"), width=8),
        timeseries("Accelerator interrupts", "none",
                   query("rate(board_accelerator_interrupts_total{%s}[%s])" % (B, RATE),
                         "{{accelerator}} {{core}}/s"), width=12),
        (table("Accelerator models", table_query("board_accelerator_info{%s}" % B), width=12,
               height=8)
         .with_transformation(dm.DataTransformerConfig(
             id_val="filterFieldsByName",
             options={"include": {"pattern": "^(accelerator|model)$"}}))),
    ]


def _hisi(t: dict[str, float]) -> list:
    return [
        timeseries("MMZ free per zone", "percentunit",
                   query("board_zone:board_mmz_free_bytes:ratio{%s}" % B, "{{zone}}"),
                   line=below(t["mmz_free_ratio"]), width=8,
                   description="The alert fires below the line (%g %% free)."
                               % (t["mmz_free_ratio"] * 100)),
        timeseries("MMZ largest free block", "bytes",
                   query("board_mmz_largest_free_block_bytes{%s}" % B, "{{zone}}"),
                   line=below(t["mmz_largest_free_block_bytes"]), width=8,
                   description="Fragmentation fails allocations before free space reaches 0; "
                               "the alert fires below the line."),
        timeseries("MMZ used / size per zone", "bytes",
                   query("board_mmz_used_bytes{%s}" % B, "{{zone}} used"),
                   query("board_mmz_size_bytes{%s}" % B, "{{zone}} size", ref="B"), width=8),
        timeseries("MMZ per process", "bytes",
                   query("board_mmz_process_bytes{%s}" % B, "{{process}}"), stacked=True,
                   width=8, description="SS928-class boards only: blocks with owner PIDs."),
        timeseries("MMZ allocations by name", "bytes",
                   query("board_mmz_allocation_bytes{%s}" % B, "{{zone}} {{name}}"),
                   query("board_mmz_allocations{%s}" % B, "{{zone}} {{name}} blocks", ref="B"),
                   stacked=True, width=8)
        .override_by_query("B", right_axis("none", unstacked=True)),
        timeseries("MMZ summary line vs blocks", "bytes",
                   query("board_mmz_reported_used_bytes{%s}" % B, "reported used"),
                   query("board_mmz_reported_remain_bytes{%s}" % B, "reported remain", ref="B"),
                   query("board_mmz_reported_total_bytes{%s}" % B, "reported total", ref="C"),
                   query("board_mmz_reported_consistent{%s}" % B, "consistent", ref="D"), width=8)
        .override_by_query("D", right_axis("bool")),
        (table("VB pools", table_query("board_vb_pool_blocks{%s}" % B, "A"),
               table_query("board_vb_pool_free_blocks{%s}" % B, "B"),
               table_query("board_vb_pool_min_free_blocks{%s}" % B, "C"),
               table_query("board_vb_pool_block_bytes{%s}" % B, "D"), width=12,
               description="Min free 0 means the pool ran dry at some point.")
         .with_transformation(dm.DataTransformerConfig(
             id_val="joinByField", options={"byField": "pool", "mode": "outer"}))
         .with_transformation(dm.DataTransformerConfig(
             id_val="filterFieldsByName",
             options={"include": {"pattern": "^(pool|common|Value #[A-D])$"}}))
         .with_transformation(organize([], {"Value #A": "blocks", "Value #B": "free",
                                            "Value #C": "min free", "Value #D": "block size"}))
         .override_by_name("min free", [prop("thresholds", below(1).build()),
                                        prop("custom.cellOptions", {"type": "color-background"})])
         .override_by_name("block size", [prop("unit", "bytes")])),
        timeseries("VB pool free blocks", "none",
                   query("board_vb_pool_free_blocks{%s}" % B, "pool {{pool}}"), width=12),
    ]


def _carveouts() -> list:
    return [
        timeseries("ION / HBMEM heaps", "bytes",
                   query("board_ion_heap_used_bytes{%s}" % B, "{{heap}} used"),
                   query("board_ion_heap_size_bytes{%s}" % B, "{{heap}} size", ref="B"),
                   query("board_ion_heap_orphaned_bytes{%s}" % B, "{{heap}} orphaned", ref="C"),
                   width=8, description="Orphaned: buffers no process holds any more."),
        timeseries("ION / HBMEM per process", "bytes",
                   query("sum by (board, heap, process) (board_ion_process_bytes{%s})" % B,
                         "{{process}} ({{heap}})"), stacked=True, width=8),
        timeseries("CMA", "bytes",
                   query("board_memory_cma_total_bytes{%s} - board_memory_cma_free_bytes{%s}"
                         % (B, B), "CMA used"),
                   query("board_memory_cma_total_bytes{%s}" % B, "CMA total", ref="B"), width=8),
        timeseries("DMA-BUF by exporter", "bytes",
                   query("board_dmabuf_bytes{%s}" % B, "exporter {{exporter}}"),
                   query("board_dmabuf_buffers{%s}" % B, "{{exporter}} buffers", ref="B"),
                   stacked=True, width=8)
        .override_by_query("B", right_axis("none", unstacked=True)),
        timeseries("DMA-BUF by process", "bytes",
                   query("board_dmabuf_process_bytes{%s}" % B, "process {{process}}"),
                   stacked=True, width=8),
        timeseries("GPU memory per process", "bytes",
                   query("sum by (board, process, kind) (board_gpu_process_memory_bytes{%s})"
                         % B, "{{process}} ({{kind}})"), stacked=True, width=8),
    ]


def _linux(t: dict[str, float]) -> list:
    return [
        timeseries("CPU per core", "percentunit",
                   query(cpu_busy("board, cpu", B, RATE), "cpu{{cpu}}"), width=8),
        timeseries("Load", "none", query("board_load1{%s}" % B, "1m"),
                   query("board_load5{%s}" % B, "5m", ref="B"),
                   query("board_load15{%s}" % B, "15m", ref="C"), width=8),
        timeseries("Linux memory", "bytes",
                   query("board_memory_available_bytes{%s}" % B, "available"),
                   query("board_memory_total_bytes{%s}" % B, "total", ref="B"), width=8),
        timeseries("Process RSS", "bytes",
                   query("board_process_resident_memory_bytes{%s}" % B, "{{process}}"), width=8),
        timeseries("Process CPU", "percentunit",
                   query("rate(board_process_cpu_seconds_total{%s}[%s])" % (B, RATE),
                         "{{process}}"), width=8),
        timeseries("Process instances", "none",
                   query("board_process_instances{%s}" % B, "{{process}}"), width=8,
                   description="0 means the process is not running; a jump is a restart "
                               "storm or a fork."),
        timeseries("Filesystems used", "percentunit",
                   query("1 - board_filesystem_available_bytes{%s}"
                         " / board_filesystem_size_bytes{%s}" % (B, B), "{{mountpoint}}"),
                   line=above(0.9), width=8),
        timeseries("Temperatures", "celsius",
                   query("board_temperature_celsius{%s}" % B, "{{sensor}}"),
                   line=above(t["temperature_celsius"]), width=8),
        timeseries("Boot time", "dateTimeAsIso",
                   query("board_boot_time_seconds{%s} * 1000" % B, "booted at"), width=8,
                   description="A step is a reboot."),
    ]


def _agent() -> list:
    return [
        timeseries("Collector success", "bool",
                   query("board_collector_success{%s}" % B, "{{collector}}"), width=8),
        timeseries("Collector duration", "s",
                   query("board_collector_duration_seconds{%s}" % B, "{{collector}}"), width=8),
        timeseries("Since last success", "s",
                   query("time() - board_collector_last_success_timestamp_seconds{%s}" % B,
                         "{{collector}}"), width=8),
        timeseries("Skipped unknown lines", "none",
                   query("rate(board_collector_skipped_lines_total{%s}[%s])" % (B, RATE),
                         "{{collector}}/s"), width=12),
        timeseries("Scrape and agentless probe", "bool",
                   query('up{%s}' % B, "scrape up ({{job}})"),
                   query("board_probe_success{%s}" % B, "probe success", ref="B"), width=12,
                   description="Agentless boards: the fleet service answers the scrape even "
                               "when the board does not; probe success says whether it did."),
        timeseries("Collector runs given up", "none",
                   query("increase(board_collector_timeouts_total{%s}[%s])" % (B, RATE),
                         "{{collector}}"), width=8,
                   description="A read blocked past --collector-timeout (a wedged driver, a "
                               "dead mount): that collector is failed and stale, the others "
                               "go on."),
        timeseries("App log behind and skipped", "bytes",
                   query("board_inference_log_lag_bytes{%s}" % B, "{{model}} behind"),
                   query("increase(board_inference_log_skipped_bytes_total{%s}[%s])" % (B, RATE),
                         "{{model}} skipped", ref="B"), width=8,
                   description="How far the log tail is behind the app's log, and what it "
                               "skipped to catch up: timings never seen."),
        timeseries("StatsD datagrams dropped", "none",
                   query("increase(board_inference_dropped_datagrams_total{%s}[%s])" % (B, RATE),
                         "dropped by the kernel"), width=8,
                   description="Timings lost in the kernel's socket buffer (a burst faster "
                               "than the agent reads)."),
    ]


def build() -> db.Dashboard:
    t = load_thresholds()
    d = dashboard(BOARD_UID, "boardfleet / Board detail",
                  "One board: status, essentials, then inference, clocks, vendor memory, "
                  "Linux and agent health in collapsed rows.", "now-3h")
    for v in (*filter_variables(), board_variable(multi=False),
              variable("model", "Model", "label_values(board_inference_latency_seconds_bucket"
                                     "{%s}, model)" % B)):
        d = d.with_variable(v)
    for a in annotations.alerts('="$board"'):
        d = d.annotation(a)
    return (Layout(d).panels(_header(t)).panels(_essentials(t))
            .row("Inference: per-model heatmaps, model load, FPS", _inference())
            .row("DDR, accelerators and clocks (throttling)", _clocks(t))
            .row("HiSilicon: MMZ zones and VB pools", _hisi(t))
            .row("Horizon / Snapdragon: ION, HBMEM, CMA, DMA-BUF, GPU", _carveouts())
            .row("Linux: CPU, memory, processes, filesystems", _linux(t))
            .row("Agent: collectors and probe", _agent())
            .dashboard)
