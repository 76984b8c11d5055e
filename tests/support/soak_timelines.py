"""Writes prometheus/tests/soak*.yml: promtool timelines of what happens in a 72 h soak.

Run ``python tests/support/soak_timelines.py`` after changing a scenario; the suite
fails when the committed files differ from what this writes. Each scenario checks both
ways (fires when it should, quiet when it should not) and that the alert stays firing
while the fault lasts, by querying the ``ALERTS`` series Prometheus writes.
"""

import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import yaml

OUT_DIR = Path(__file__).resolve().parents[2] / "prometheus" / "tests"
MIB = 1048576
AGENT = 'job="boardfleet-agent", instance="%s:9776", board="%s"'
BOOT = 1763500000


def runs(values: Sequence[float]) -> str:
    """promtool series notation for ``values``: runs of equal values as ``vxN``."""
    out: List[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        v = "%.10g" % values[i]
        out.append(v if j == i else "%sx%d" % (v, j - i))
        i = j + 1
    return " ".join(out)


def series(metric: str, board: str, values: Sequence[float], **labels: str) -> Dict[str, str]:
    extra = "".join(', %s="%s"' % kv for kv in labels.items())
    return {"series": "%s{%s%s}" % (metric, AGENT % (board, board), extra),
            "values": runs(values)}


def alerts(board: str, at: str, expected: List[Tuple[str, Dict[str, str]]],
           alertnames: str) -> Dict[str, Any]:
    """Check that at ``at`` exactly ``expected`` alerts among ``alertnames`` fire."""
    expr = 'ALERTS{alertstate="firing", board="%s", alertname=~"%s"}' % (board, alertnames)
    samples = []
    for name, labels in expected:
        all_labels = {"alertname": name, "alertstate": "firing", "board": board,
                      "instance": "%s:9776" % board, "job": "boardfleet-agent", **labels}
        samples.append({"labels": "ALERTS{%s}" % ", ".join(
            '%s="%s"' % kv for kv in sorted(all_labels.items())), "value": 1})
    return {"expr": expr, "eval_time": at, "exp_samples": samples}


def minutes(hours: float) -> int:
    return round(hours * 60)


def slow_leak() -> Dict[str, Any]:
    """1 MiB/h on a 256 MiB zone for 72 h (100 MiB free at the start)."""
    n = minutes(72) // 5
    free = [100 * MIB - MIB * i / 12 for i in range(n + 1)]
    fill = "BoardMMZFillingUp|BoardMMZExhausted"
    w = {"severity": "warning", "zone": "anonymous"}
    return {
        "name": "slow leak: 1 MiB/h on a 256 MiB zone over 72 h fires and stays firing",
        "interval": "5m",
        "input_series": [series("board_mmz_size_bytes", "slow", [256 * MIB] * (n + 1),
                                zone="anonymous"),
                         series("board_mmz_free_bytes", "slow", free, zone="anonymous")],
        "promql_expr_test": [
            alerts("slow", "6h", [], fill),
            alerts("slow", "7h30m", [("BoardMMZFillingUp", {**w, "speed": "slow"})], fill),
            alerts("slow", "72h", [("BoardMMZFillingUp", {**w, "speed": "slow"}),
                                   ("BoardMMZFillingUp", {**w, "speed": "days"})], fill),
        ],
    }


def restart_leak() -> Dict[str, Any]:
    """Hi3516 class (no owner PIDs): the app restarts every 2 h; each exit leaves 8 MiB of
    app_buf blocks behind. During a restart (2 min) the app's 100 MiB are free; once
    MMZ is exhausted, the restarts must not resolve BoardMMZExhausted."""
    n = minutes(20)
    free, held = [], []
    for i in range(n + 1):
        k = i // 120                          # restarts so far
        leaked = min(8 * k, 56)               # the floor stops at 4 MiB free
        restarting = i % 120 < 2 and k > 0
        free.append((60 - leaked + (100 if restarting else 0)) * MIB)
        held.append((leaked + (0 if restarting else 100)) * MIB)
    names = "BoardMMZFillingUp|BoardMMZExhausted|BoardAcceleratorMemoryLeak"
    fill = ("BoardMMZFillingUp", {"severity": "warning", "zone": "anonymous", "speed": "slow"})
    leak = ("BoardAcceleratorMemoryLeak", {"severity": "warning", "zone": "anonymous",
                                           "name": "app_buf", "kind": "mmz_allocation",
                                           "speed": "slow"})
    full = ("BoardMMZExhausted", {"severity": "critical", "zone": "anonymous"})
    return {
        "name": "stepwise MMZ leak across app restarts (no owner PIDs), then exhausted "
                "through restarts",
        "interval": "1m",
        "input_series": [
            series("board_mmz_size_bytes", "steps", [256 * MIB] * (n + 1), zone="anonymous"),
            series("board_mmz_free_bytes", "steps", free, zone="anonymous"),
            series("board_mmz_allocation_bytes", "steps", held, zone="anonymous",
                   name="app_buf"),
            series("board_mmz_allocation_bytes", "steps", [12 * MIB] * (n + 1),
                   zone="anonymous", name="VbPool"),
        ],
        "promql_expr_test": [
            alerts("steps", "5h", [], names),
            alerts("steps", "8h30m", [fill, leak], names),
            # 14 h: 4 MiB (1.6 %) free. 16 h: restarting, 104 MiB free for 2 minutes.
            alerts("steps", "15h", [full, fill, leak], names),
            alerts("steps", "16h1m", [full, fill, leak], names),
            alerts("steps", "20h", [full], names),
        ],
    }


def one_off() -> Dict[str, Any]:
    """Pipeline start takes 156 MiB at 1 h, a model load 100 MiB at 3 h 30 m, then flat."""
    n = minutes(30) // 5
    free, app = [], []
    for i in range(n + 1):
        used = (156 if i >= 12 else 0) + (100 if i >= 42 else 0)
        free.append((400 - used) * MIB)
        app.append(used * MIB)
    names = "BoardMMZFillingUp|BoardMMZExhausted|BoardAcceleratorMemoryLeak"
    return {
        "name": "one-off allocations (pipeline start, model load) raise nothing",
        "interval": "5m",
        "input_series": [
            series("board_mmz_size_bytes", "once", [512 * MIB] * (n + 1), zone="anonymous"),
            series("board_mmz_free_bytes", "once", free, zone="anonymous"),
            series("board_mmz_process_bytes", "once", app, process="app"),
            series("board_mmz_allocation_bytes", "once", app, zone="anonymous", name="app_buf"),
        ],
        "promql_expr_test": [alerts("once", at, [], names)
                             for at in ("1h30m", "2h", "4h", "6h", "9h", "20h", "30h")],
    }


def reboot() -> Dict[str, Any]:
    """A board reboots at 2 h (60 s without scrapes); MMZ is all free, then the pipeline
    takes it again."""
    n = minutes(9)
    up, boot, free = [], [], []
    for i in range(n + 1):
        up.append(0 if i == 120 else 1)
        boot.append(BOOT if i < 120 else BOOT + 7200 + 3600 * 24)
        free.append((256 if 120 <= i < 125 else 100) * MIB)
    names = "BoardRebooted|BoardDown|BoardMMZFillingUp"
    rebooted = ("BoardRebooted", {"severity": "warning"})
    return {
        "name": "reboot: BoardRebooted for an hour, no BoardDown, no MMZFillingUp after it",
        "interval": "1m",
        "input_series": [
            series("up", "boot", up),
            series("board_boot_time_seconds", "boot", boot),
            series("board_mmz_size_bytes", "boot", [256 * MIB] * (n + 1), zone="anonymous"),
            series("board_mmz_free_bytes", "boot", free, zone="anonymous"),
        ],
        "promql_expr_test": [
            alerts("boot", "1h59m", [], names),
            alerts("boot", "2h1m", [rebooted], names),
            alerts("boot", "2h50m", [rebooted], names),
            alerts("boot", "3h5m", [], names),
            alerts("boot", "9h", [], names),
        ],
    }


def dying() -> Dict[str, Any]:
    """Exhausted MMZ and busy DDR; at 30 m the board dies (its series go stale, up 0)."""
    alive = 30
    n = 60

    def until_death(v: float) -> str:
        return "%s stale" % runs([v] * (alive + 1))

    board = "dies"
    inp = [{"series": "up{%s}" % (AGENT % (board, board)),
            "values": runs([1] * (alive + 1) + [0] * (n - alive))}]
    for name, v, labels in (
            ("board_mmz_size_bytes", 64 * MIB, ', zone="anonymous"'),
            ("board_mmz_free_bytes", 1 * MIB, ', zone="anonymous"'),
            ("board_mmz_largest_free_block_bytes", 1 * MIB, ', zone="anonymous"'),
            ("board_ddr_utilization_ratio", 0.7, ', controller="ddrc0", source="hiddrs"')):
        inp.append({"series": "%s{%s%s}" % (name, AGENT % (board, board), labels),
                    "values": until_death(v)})
    names = "BoardDown|BoardMMZExhausted|BoardDDRBandwidthHigh"
    full = ("BoardMMZExhausted", {"severity": "critical", "zone": "anonymous"})
    ddr = ("BoardDDRBandwidthHigh", {"severity": "warning"})
    down = ("BoardDown", {"severity": "critical", "cause": "unreachable"})
    return {
        "name": "a dying board keeps its alerts firing until BoardDown takes over",
        "interval": "1m",
        "input_series": inp,
        "promql_expr_test": [
            alerts(board, "29m", [full, ddr], names),
            alerts(board, "31m", [full, ddr], names),
            alerts(board, "33m", [full, ddr, down], names),
            alerts(board, "60m", [down], names),
        ],
    }


def ddr_duty() -> Dict[str, Any]:
    """DDR above 40 % three samples in four (15 s samples): fires and stays firing
    through the dips; one in three above: quiet."""
    n = 240
    busy = [0.2 if i % 4 == 3 else 0.6 for i in range(n)]
    light = [0.6 if i % 3 == 0 else 0.2 for i in range(n)]
    names = "BoardDDRBandwidthHigh"
    high = ("BoardDDRBandwidthHigh", {"severity": "warning"})
    return {
        "name": "DDR above 40 % for 75 % of the time pages; 33 % does not",
        "interval": "15s",
        "input_series": [
            {"series": "board_ddr_utilization_ratio{%s, controller=\"ddrc0\", "
                       "source=\"hiddrs\"}" % (AGENT % ("duty", "duty")),
             "values": " ".join("%g" % v for v in busy)},
            {"series": "board_ddr_utilization_ratio{%s, controller=\"ddrc0\", "
                       "source=\"hiddrs\"}" % (AGENT % ("light", "light")),
             "values": " ".join("%g" % v for v in light)},
        ],
        "promql_expr_test": [
            alerts("duty", "45s", [], names),
            alerts("duty", "10m", [high], names),
            *[alerts("duty", "%dm%ds" % divmod(s, 60), [high], names)
              for s in range(20 * 60 + 45, 22 * 60, 15)],
            alerts("light", "59m", [], names),
        ],
    }


def agentless() -> Dict[str, Any]:
    """An agentless board's probe fails from 10 m on while the fleet service answers."""
    lab = 'job="boardfleet-agentless", instance="hi3516-07", board="hi3516-07"'
    return {
        "name": "agentless board whose probe fails raises BoardDown (up stays 1)",
        "interval": "1m",
        "input_series": [
            {"series": "up{%s}" % lab, "values": "1x30"},
            {"series": "board_probe_success{%s}" % lab, "values": "1x9 0x21"},
        ],
        "promql_expr_test": [
            {"expr": 'ALERTS{alertname="BoardDown", alertstate="firing"}', "eval_time": "11m",
             "exp_samples": []},
            {"expr": 'ALERTS{alertname="BoardDown", alertstate="firing"}', "eval_time": "13m",
             "exp_samples": [{"labels": 'ALERTS{alertname="BoardDown", alertstate="firing", '
                                        'board="hi3516-07", cause="probe_failed", '
                                        'instance="hi3516-07", job="boardfleet-agentless", '
                                        'severity="critical"}', "value": 1}]},
        ],
    }


def hang() -> Dict[str, Any]:
    """The inference app reports 600 timings a minute, then hangs at 30 m."""
    count = [min(i, 30) * 600 for i in range(91)]
    names = "BoardInferenceStalled"
    stalled = ("BoardInferenceStalled", {"severity": "warning", "model": "detector",
                                         "cause": "stalled"})
    return {
        "name": "inference app hang: stalled after 10 m without timings, firing while hung",
        "interval": "1m",
        "input_series": [series("board_inference_latency_seconds_count", "hang", count,
                                model="detector")],
        "promql_expr_test": [
            alerts("hang", "29m", [], names),
            alerts("hang", "39m", [], names),
            alerts("hang", "42m", [stalled], names),
            alerts("hang", "90m", [stalled], names),
        ],
    }


def regression() -> Dict[str, Any]:
    """p99 about 20 ms for 2 h, then about 100 ms (5x) until 30 h: stays firing."""
    n = minutes(30)
    edges = ("0.005", "0.02", "0.1", "+Inf")
    counts: Dict[str, List[float]] = {le: [] for le in edges}
    fast = slow = 0
    for i in range(n + 1):
        counts["0.005"].append(0)
        counts["0.02"].append(fast)
        counts["0.1"].append(fast + slow)
        counts["+Inf"].append(fast + slow)
        if i < 120:
            fast += 600
        else:
            slow += 600
    names = "BoardInferenceLatencyHigh"
    reg = ("BoardInferenceLatencyHigh", {"severity": "warning", "model": "detector",
                                         "cause": "regression"})
    return {
        "name": "latency regression against the soak's own baseline stays firing for days",
        "interval": "1m",
        "input_series": [
            {"series": "board_inference_latency_seconds_bucket{%s, model=\"detector\", "
                       "le=\"%s\"}" % (AGENT % ("lat", "lat"), le),
             "values": "%s" % runs(v)} for le, v in counts.items()],
        "promql_expr_test": [
            alerts("lat", "1h50m", [], names),
            alerts("lat", "2h20m", [reg], names),
            alerts("lat", "24h", [reg], names),
            alerts("lat", "30h", [reg], names),
        ],
    }


def collector_loss() -> Dict[str, Any]:
    """MMZ exhausted; at 20 m the mmz collector fails and its series go: the critical
    alert holds, BoardCollectorFailing fires. Another board's zone vanishes."""
    a, b = "flaky", "unload"
    inp = [
        {"series": "up{%s}" % (AGENT % (a, a)), "values": "1x90"},
        {"series": "up{%s}" % (AGENT % (b, b)), "values": "1x90"},
        {"series": "board_collector_success{%s, collector=\"mmz\"}" % (AGENT % (a, a)),
         "values": "1x20 0x70"},
        {"series": "board_mmz_size_bytes{%s, zone=\"anonymous\"}" % (AGENT % (a, a)),
         "values": "67108864x20 stale"},
        {"series": "board_mmz_free_bytes{%s, zone=\"anonymous\"}" % (AGENT % (a, a)),
         "values": "1048576x20 stale"},
        {"series": "board_mmz_size_bytes{%s, zone=\"anonymous\"}" % (AGENT % (b, b)),
         "values": "67108864x20 stale"},
        {"series": "board_mmz_free_bytes{%s, zone=\"anonymous\"}" % (AGENT % (b, b)),
         "values": "33554432x20 stale"},
    ]
    names = "BoardMMZExhausted|BoardCollectorFailing"
    full = ("BoardMMZExhausted", {"severity": "critical", "zone": "anonymous"})
    failing = ("BoardCollectorFailing", {"severity": "warning", "collector": "mmz",
                                         "cause": "failing"})
    gone = ("BoardCollectorFailing", {"severity": "warning", "collector": "mmz",
                                      "zone": "anonymous", "cause": "zone_vanished"})
    return {
        "name": "a failing MMZ collector or an unloaded driver does not resolve silently",
        "interval": "1m",
        "input_series": inp,
        "promql_expr_test": [
            alerts(a, "19m", [full], names),
            alerts(a, "27m", [full, failing, gone], names),
            alerts(a, "90m", [failing, gone], names),
            alerts(b, "19m", [], names),
            alerts(b, "27m", [gone], names),
        ],
    }


def stuck_collector() -> Dict[str, Any]:
    """The mmz collector's last success stops advancing at 20 m (stuck in its source),
    on a board whose clock is a year behind; another collector keeps advancing."""
    b = "stuck"
    behind = 1700000000
    return {
        "name": "a stuck collector is caught by its last-success time not moving",
        "interval": "1m",
        "input_series": [
            {"series": "board_collector_last_success_timestamp_seconds{%s, collector=\"mmz\"}"
                       % (AGENT % (b, b)),
             "values": runs([behind + 60 * min(i, 20) for i in range(61)])},
            {"series": "board_collector_last_success_timestamp_seconds{%s, collector=\"cpu\"}"
                       % (AGENT % (b, b)),
             "values": runs([behind + 60 * i for i in range(61)])},
        ],
        "promql_expr_test": [
            alerts(b, "29m", [], "BoardCollectorFailing"),
            alerts(b, "36m", [("BoardCollectorFailing", {"severity": "warning",
                                                        "collector": "mmz",
                                                        "cause": "stale"})],
                   "BoardCollectorFailing"),
            alerts(b, "60m", [("BoardCollectorFailing", {"severity": "warning",
                                                        "collector": "mmz",
                                                        "cause": "stale"})],
                   "BoardCollectorFailing"),
        ],
    }


# (file, evaluation interval, scenarios): multi-day timelines at 5-minute resolution.
FILES = (
    ("soak.yml", "1m", (restart_leak, reboot, dying, ddr_duty, agentless, hang, regression,
                        collector_loss, stuck_collector)),
    ("soak-days.yml", "5m", (slow_leak, one_off)),
)


def render(interval: str, scenarios: Sequence[Any]) -> str:
    doc = {"rule_files": ["../rules/boardfleet-recording.yml",
                          "../rules/boardfleet-alerts.yml"],
           "evaluation_interval": interval,
           # Recording rules first: promtool otherwise orders groups at random.
           "group_eval_order": ["boardfleet-recording", "boardfleet-alerts"],
           "tests": [s() for s in scenarios]}
    return ("# Generated by tests/support/soak_timelines.py: soak scenarios as promtool\n"
            "# timelines. Do not edit; change the script and run it.\n"
            + yaml.safe_dump(doc, sort_keys=False, width=4096))


def files() -> Dict[Path, str]:
    """``{path: text}`` of every timeline file."""
    return {OUT_DIR / name: render(interval, scenarios) for name, interval, scenarios in FILES}


if __name__ == "__main__":
    for path, text in files().items():
        path.write_text(text)
        sys.stdout.write("wrote %s\n" % path)
