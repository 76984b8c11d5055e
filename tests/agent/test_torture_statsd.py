"""Torture: StatsD latency data that cannot be corrupted or silently lost (issue 13, 4).

Tiny sample rates, one model's runaway tags, reloads and kernel drops in bursts.
"""

import math
import socket
import threading
import time
from typing import List

from hypothesis import given, settings
from hypothesis import strategies as st
from support.net import free_port
from support.paths import FIXTURES

from boardfleet_agent.app import Agent
from boardfleet_agent.config import AgentConfig
from boardfleet_agent.inference.intake import UdpIntake
from boardfleet_agent.inference.pipeline import Inference
from boardfleet_agent.source import LocalSource

HANG = 30.0
GENERIC = str(FIXTURES / "generic")


def inference(**table: object) -> Inference:
    return Inference({"statsd": {"listen": "off"}, "inference": dict(table)},
                     LocalSource(GENERIC))


def totals(inf: Inference) -> List[float]:
    return [v for _, counts, total in inf.histograms.snapshot() for v in (*counts, total)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(0, 10 ** 400)
              .map(str), st.sampled_from(["1e-300", "0.0001", "1e308", "5e-324"])),
    st.floats(0, 3.6e6)), min_size=1, max_size=20))
def test_no_sample_rate_makes_a_count_or_sum_infinite(lines: list) -> None:
    inf = inference()
    for rate, ms in lines:
        inf.handle(("m:%r|ms|@%s" % (ms, rate)).encode())
    assert all(math.isfinite(v) for v in totals(inf))


def test_tiny_rate_is_rejected_with_a_reason() -> None:
    inf = inference()
    inf.handle(b"m:1|ms|@1e-300")
    inf.handle(b"m:1|ms|@0.001")  # the smallest rate kept: 1000 timings
    assert inf.rejected["malformed"] == 1
    assert inf.histograms.snapshot()[0][1][-1] == 0.0
    assert sum(inf.histograms.snapshot()[0][1]) == 1000.0


def test_one_models_tags_cannot_lock_the_others_out() -> None:
    inf = inference(max_series=100, max_series_per_model=10)
    for i in range(500):
        inf.handle(b"flood:1|ms|#backend:b%d" % i)
    for model in (b"yolo", b"resnet"):
        inf.handle(model + b":1|ms|#backend:bpu")
    models = [labels[0] for labels, _, _ in inf.histograms.snapshot()]
    assert models.count("flood") == 10
    assert {"yolo", "resnet"} <= set(models)
    assert inf.rejected["too_many_series"] == 490


def test_reload_keeps_histograms_and_the_socket() -> None:
    port = free_port(socket.SOCK_DGRAM)
    cfg = AgentConfig()
    cfg.sysroot = GENERIC
    cfg.sections["statsd"] = {"listen": "127.0.0.1:%d" % port}
    first = Agent(cfg)
    first.start()
    try:
        first.inference.handle(b"m:2|ms")
        again = AgentConfig()
        again.sysroot = GENERIC
        again.sections["statsd"] = {"listen": "127.0.0.1:%d" % port}
        fresh = Agent(again, previous=first)
        first.stop(successor=fresh)
        fresh.start()
        assert fresh.inference is first.inference
        assert b'board_inference_latency_seconds_count{backend="",model="m"} 1.0' in fresh.render()
        # Changed tables: a new intake, the old one stopped.
        changed = AgentConfig()
        changed.sysroot = GENERIC
        changed.sections["statsd"] = {"listen": "127.0.0.1:%d" % port}
        changed.sections["inference"] = {"tags": ["backend", "stage"]}
        third = Agent(changed, previous=fresh)
        fresh.stop(successor=third)
        third.start()
        assert third.inference is not fresh.inference
        fresh = third
    finally:
        fresh.stop()


def test_kernel_drops_in_a_burst_are_counted() -> None:
    stuck = threading.Event()
    inf = inference()
    intake = inf.intake = UdpIntake(("127.0.0.1", 0), lambda data: stuck.wait(HANG))
    assert intake.start()
    assert intake.kernel_drops() == 0
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        end = time.monotonic() + HANG
        payload = b"m:1|ms\n" * 140
        while not intake.kernel_drops():  # the handler is stuck: the buffer fills up
            assert time.monotonic() < end, "no drop reported"
            for _ in range(200):
                tx.sendto(payload, intake.bound)
        exported = {m.name: m.samples[0].value for m in inf.collect() if m.samples}
        assert exported["board_inference_dropped_datagrams"] >= 1
    finally:
        tx.close()
        stuck.set()
        intake.stop()
    assert intake.kernel_drops() is None  # closed: nothing to report
