"""The agent's latency buckets against known timings: promtool computes the p99 the
dashboards and the latency alert read (``histogram_quantile`` over ``rate``) from the
agent's own histogram, and it must be within 10 % of the true p99 of a steady model
anywhere from 1 ms to 100 ms."""

import math
import subprocess
from pathlib import Path
from typing import Dict, List

import yaml
from support.promtool import promtool

from boardfleet_agent.inference.latency import LatencyHistograms

N = 1000
# Steady models whose true p99 lies in 1 .. 100 ms: 60 log-spaced nominal latencies,
# plus the 9.9 / 10.1 ms pair that used to straddle a bucket bound and double its p99.
LOW, HIGH = 0.001, 0.099
NOMINAL = sorted({round(LOW * (HIGH / LOW) ** (i / 59), 7) for i in range(60)}
                 | {0.0099, 0.0101})


def _timings(nominal: float) -> List[float]:
    """A steady model: every timing within +-1 % of nominal, spread evenly."""
    return [nominal * (0.99 + 0.02 * i / (N - 1)) for i in range(N)]


def _true_p99(timings: List[float]) -> float:
    ordered = sorted(timings)
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


def _group(models: List[float]) -> Dict:
    """One promtool test group: the agent's histogram of ``models`` and the checks."""
    hist = LatencyHistograms(max_models=len(models), max_series=len(models))
    truth: Dict[str, float] = {}
    for i, nominal in enumerate(models):
        model = "m%02d" % i
        timings = _timings(nominal)
        truth[model] = _true_p99(timings)
        for seconds in timings:
            assert hist.observe((model,), seconds) is None
    series = []
    for sample in hist.family().samples:
        if sample.name.endswith("_bucket"):
            labels = ", ".join('%s="%s"' % kv for kv in sorted(sample.labels.items()))
            series.append({"series": "board_inference_latency_seconds_bucket{%s}" % labels,
                           "values": "0 %g" % sample.value})
    series += [{"series": 'true_p99{model="%s"}' % m, "values": "%r %r" % (v, v)}
               for m, v in truth.items()]
    p99 = ("histogram_quantile(0.99, sum by (model, le)"
           " (rate(board_inference_latency_seconds_bucket[5m])))")
    return {"interval": "5m", "input_series": series, "promql_expr_test": [
        {"expr": "count(%s)" % p99, "eval_time": "5m",
         "exp_samples": [{"labels": "{}", "value": len(models)}]},
        {"expr": "count(abs(%s / on (model) true_p99 - 1) >= 0.1) or vector(0)" % p99,
         "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": 0}]}]}


def _unit_test(tmp: Path) -> Path:
    """A promtool unit test file, in groups small enough for promtool's sample limit."""
    (tmp / "empty.yml").write_text("groups: []\n")
    test = {"rule_files": ["empty.yml"], "evaluation_interval": "1m",
            "tests": [_group(NOMINAL[i:i + 10]) for i in range(0, len(NOMINAL), 10)]}
    path = tmp / "buckets_test.yml"
    path.write_text(yaml.safe_dump(test))
    return path


def test_p99_of_a_steady_model_is_within_10_percent(tmp_path: Path) -> None:
    r = subprocess.run([promtool(), "test", "rules", str(_unit_test(tmp_path))],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
