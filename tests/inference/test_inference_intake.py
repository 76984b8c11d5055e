"""Real UDP datagrams to a running agent, read back from /metrics."""

import os
import signal
import socket
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
from inference_io import (
    SYSROOT,
    free_udp_port,
    parse_datagram,
    scrape,
    scrape_text,
    send,
    statsd_agent,
    value,
    wait_for,
)
from prometheus_client import CollectorRegistry, generate_latest
from support.agent import agent_cmd, served_agent, wait_logged
from support.promtool import check_metrics

from boardfleet_agent.inference.pipeline import Inference
from boardfleet_agent.source import LocalSource

LAT = "board_inference_latency_seconds"


def _count(model, **tags):
    return lambda s: value(s, LAT + "_count", model=model, **tags)


def test_histogram_counts_sums_and_buckets_are_exact(tmp_path):
    with statsd_agent(tmp_path) as (base, udp):
        # 0.05 ms, 3 ms (x2), 40 ms with backend tag, 2 s at rate 0.25 (counts 4).
        send(udp, b"yolov8:0.05|ms", b"yolov8:3|ms\nyolov8:3|ms",
             b"det.latency:40|ms|#model:yolov8,backend:bpu,camera:front",
             b"resnet:2000|ms|@0.25")
        s = wait_for(base, lambda s: value(s, LAT + "_count", model="resnet", backend="") == 4)
        assert value(s, LAT + "_count", model="yolov8", backend="") == 3
        assert abs(value(s, LAT + "_sum", model="yolov8", backend="") - 0.00605) < 1e-12
        assert value(s, LAT + "_bucket", model="yolov8", backend="", le="0.0001") == 1
        assert value(s, LAT + "_bucket", model="yolov8", backend="", le="0.00281") == 1
        assert value(s, LAT + "_bucket", model="yolov8", backend="", le="0.00309") == 3
        assert value(s, LAT + "_bucket", model="yolov8", backend="", le="+Inf") == 3
        # The model tag wins over the name; "camera" is not an allowed tag: dropped.
        assert value(s, LAT + "_count", model="yolov8", backend="bpu") == 1
        assert value(s, LAT + "_sum", model="yolov8", backend="bpu") == 0.04
        assert value(s, LAT + "_sum", model="resnet", backend="") == 8.0
        assert value(s, LAT + "_bucket", model="resnet", backend="", le="1.0") == 0
        assert value(s, LAT + "_bucket", model="resnet", backend="", le="2.5") == 4
        assert not any(k[0].startswith(LAT) and ("model", "det.latency") in k[1] for k in s)
        assert check_metrics(scrape_text(base)) == []


def test_bad_input_is_counted_by_reason_and_never_crashes(tmp_path):
    junk = [
        b"x:nan|ms", b"x:-3|ms", b"x:1e9|ms", b"x:1|g", b"garbage", b"\xff\xfe\xfd",
        b"x:1|ms\n" * 3000, "m\u00f6del:1|ms".encode(), b"x:1|ms|#model:a b",
        b"\x00" * 100, b"x:1|ms|@7", b"model_load:5|ms|#model:m,stage:cold",
    ]
    with statsd_agent(tmp_path) as (base, udp):
        send(udp, *junk)
        send(udp, b"ok:1|ms")
        s = wait_for(base, lambda s: value(s, LAT + "_count", model="ok", backend="") == 1)
        rej = {r: value(s, "board_inference_rejected_total", reason=r) for r in (
            "not_finite", "negative", "too_large", "unknown_type", "malformed",
            "bad_encoding", "oversized_packet", "bad_label")}
        assert rej == {"not_finite": 1, "negative": 1, "too_large": 1, "unknown_type": 1,
                       "malformed": 4, "bad_encoding": 1, "oversized_packet": 1,
                       "bad_label": 2}
        assert sum(1 for k in s if k[0] == LAT + "_count") == 1
        assert check_metrics(scrape_text(base)) == []


def test_model_cap_rejects_new_names_and_keeps_old_ones(tmp_path):
    config = '[inference]\nmax_models = 3\ntags = ["backend", "core"]\n'
    with statsd_agent(tmp_path, config) as (base, udp):
        send(udp, *[b"m%d:1|ms" % i for i in range(6)])
        send(udp, b"m0:2|ms|#core:1", b"m1:1|ms")
        s = wait_for(base, lambda s: value(s, "board_inference_rejected_total",
                                           reason="too_many_models") == 3
                     and value(s, LAT + "_count", model="m1", backend="", core="") == 2)
        models = {dict(k[1])["model"] for k in s if k[0] == LAT + "_count"}
        assert models == {"m0", "m1", "m2"}
        assert value(s, LAT + "_count", model="m0", backend="", core="1") == 1


def test_app_helper_reports_through_the_agent(tmp_path):
    app = (
        "from boardfleet_agent.inference.report import report_latency, timed\n"
        "report_latency('yolov8', 0.0125)\n"
        "for _ in range(5):\n"
        "    with timed('yolov8', backend='bpu'):\n"
        "        pass\n"
        "@timed('resnet')\n"
        "def infer():\n"
        "    return 1\n"
        "assert infer() + infer() == 2\n"
    )
    with statsd_agent(tmp_path) as (base, udp):
        env = dict(os.environ, BOARDFLEET_STATSD="%s:%d" % udp)
        subprocess.run([sys.executable, "-c", app], env=env, check=True, timeout=30)
        s = wait_for(base, lambda s: value(s, LAT + "_count", model="resnet", backend="") == 2)
        assert value(s, LAT + "_count", model="yolov8", backend="") == 1
        assert value(s, LAT + "_sum", model="yolov8", backend="") == 0.0125
        assert value(s, LAT + "_count", model="yolov8", backend="bpu") == 5
        assert value(s, LAT + "_bucket", model="yolov8", backend="bpu", le="0.0001") == 5


def test_shell_reports_with_bash_dev_udp(tmp_path):
    with statsd_agent(tmp_path) as (base, udp):
        cmd = 'for i in 1 2 3; do echo "yolov8:12.5|ms|#backend:bpu" > /dev/udp/%s/%d; done'
        subprocess.run(["bash", "-c", cmd % udp], check=True, timeout=30)
        s = wait_for(base, lambda s: value(s, LAT + "_count", model="yolov8", backend="bpu") == 3)
        assert abs(value(s, LAT + "_sum", model="yolov8", backend="bpu") - 0.0375) < 1e-12


def test_helper_never_raises_without_an_agent():
    app = (
        "import time\n"
        "from boardfleet_agent.inference.report import report_latency, timed\n"
        "t = time.perf_counter()\n"
        "for i in range(2000):\n"
        "    report_latency('m', float('nan') if i % 2 else 1e-3)\n"
        "    with timed('m\\u00f6'):\n"
        "        pass\n"
        "print(time.perf_counter() - t)\n"
    )
    for target in ("127.0.0.1:9", "not-an-address", "256.1.1.1:70000"):
        env = dict(os.environ, BOARDFLEET_STATSD=target)
        out = subprocess.run([sys.executable, "-c", app], env=env, check=True, timeout=30,
                             capture_output=True, text=True)
        assert float(out.stdout) < 5.0, target


def test_bad_settings_stop_the_agent_with_a_message(tmp_path):
    cases = {
        '[inference]\nmax_models = "many"\n': "inference.max_models",
        '[inference]\ntags = ["model"]\n': "inference.tags",
        "[logtail.x]\npath = '/tmp/x.log'\npattern = 'took (\\d+) ms'\n": "named groups",
        '[logtail.x]\nmodel = "y"\n': "logtail.x.path",
    }
    for text, message in cases.items():
        config = tmp_path / "agent.toml"
        config.write_text(text)
        r = subprocess.run(agent_cmd("--config", str(config), "--once"),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and message in r.stderr, (text, r.stderr)


def test_intake_off_and_bad_address(tmp_path):
    bad = subprocess.run(agent_cmd("--statsd-listen", "nowhere", "--once"),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "statsd listen" in bad.stderr
    port = free_udp_port()
    config = tmp_path / "agent.toml"
    config.write_text('[statsd]\nlisten = "127.0.0.1:%d"\n' % port)
    # The flag overrides the config file: "off" leaves the configured port unbound.
    with served_agent(SYSROOT, "--config", str(config), "--statsd-listen", "off") as (base, _):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", port))
        assert "board_inference" not in scrape_text(base)


def _inference():
    return Inference({"statsd": {"listen": "off"}}, LocalSource(SYSROOT))


values = st.sampled_from(["1", "0.5", "2e3", "nan", "-1", "1e9", "abc", "", "1_0",
                          "\u0661", "3:4", " 7"])
suffixes = st.sampled_from(["|ms", "|ms|@0.5", "|ms|#model:a", "|ms|#model:b c", "|g",
                            "|c", "|ms|@2", "|ms|#backend:bpu|@0.25", ""])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["m", "model_load", "x.y"]), values, values, suffixes)
def test_cached_line_shapes_match_the_full_parse(name, primer_value, value, suffix):
    primer = ("%s:%s%s" % (name, primer_value, suffix)).encode()
    line = ("%s:%s%s" % (name, value, suffix)).encode()
    cached, fresh = _inference(), _inference()
    cached.handle(primer)
    cached.handle(line)  # may take the cached route of the primer's shape
    fresh.handle(line)
    fresh.handle(primer)
    assert cached.histograms.snapshot() == fresh.histograms.snapshot()
    assert cached.rejected == fresh.rejected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=5))
def test_handler_survives_arbitrary_datagrams(datagrams):
    inf = _inference()
    for d in datagrams:
        for _ in range(2):  # the second time through the shape cache
            before = sum(inf.rejected.values())
            inf.handle(d)
            assert sum(inf.rejected.values()) >= before + len(parse_datagram(d)[1])
    registry = CollectorRegistry()
    registry.register(inf)
    out = generate_latest(registry)
    assert (b"board_inference_rejected_total" in out) == bool(datagrams)



def test_sighup_reload_keeps_the_intake_and_its_histograms():
    """A reload with unchanged [statsd]/[inference] tables loses no timings (issue 13)."""
    port = free_udp_port()
    udp = ("127.0.0.1", port)
    with served_agent(SYSROOT, "--statsd-listen", "127.0.0.1:%d" % port) as (base, proc):
        send(udp, b"before:1|ms")
        wait_for(base, lambda s: value(s, LAT + "_count", model="before", backend="") == 1)
        proc.send_signal(signal.SIGHUP)
        assert wait_logged(proc, "config reloaded")
        send(udp, b"after:1|ms")
        wait_for(base, lambda s: value(s, LAT + "_count", model="after", backend="") == 1)
        s = scrape(base)
        assert value(s, LAT + "_count", model="before", backend="") == 1  # kept
        assert proc.poll() is None
