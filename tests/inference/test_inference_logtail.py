"""Log tail: following real files through appends, rotation and truncation; patterns."""

import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from inference_io import statsd_agent, value, wait_for

from boardfleet_agent.inference.logtail import FileFollower, LogPattern, LogStats

SAMPLES = Path(__file__).parent / "samples"
HRT = LogPattern.named_or_regex("hrt_model_exec")


def _append(path, text):
    with open(path, "a") as f:
        f.write(text)


def test_follows_appends_partial_lines_rotation_and_truncation(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("old line before the agent started\n")
    f = FileFollower(str(log))
    assert f.poll() == []
    _append(log, "one\ntw")
    assert f.poll() == ["one"]
    _append(log, "o\n")
    assert f.poll() == ["two"]
    # Rotation by rename: the rest of the old file is read, then the new file from 0.
    _append(log, "last of old\n")
    os.rename(log, tmp_path / "app.log.1")
    assert f.poll() == ["last of old"]
    assert f.poll() == []
    log.write_text("first of new\n")
    assert f.poll() == ["first of new"]
    # Truncation in place (copytruncate).
    with open(log, "r+") as h:
        h.truncate(0)
    assert f.poll() == []
    _append(log, "after truncate\n")
    assert f.poll() == ["after truncate"]
    f.close()


def test_file_created_after_start_is_read_from_its_beginning(tmp_path):
    log = tmp_path / "late.log"
    f = FileFollower(str(log))
    assert f.poll() == []
    log.write_text("a\nb\n")
    assert f.poll() == ["a", "b"]
    f.close()


def test_hrt_model_exec_samples():
    got = [HRT.extract(line) for line in
           (SAMPLES / "s600_hrt_model_exec_perf_full.txt").read_text().splitlines()]
    found = [g for g in got if g]
    assert found == [
        {"frames": 200.0, "latency_ms": 0.721070, "fps": 2720.089111},
        {"frames": 400.0, "latency_ms": 0.719145, "fps": 2731.494141},
        {"latency_ms": 0.719}, {"fps": 2731.494},
    ]
    x3 = [HRT.extract(line) for line in
          (SAMPLES / "x3_hrt_model_exec_perf_summary.txt").read_text().splitlines()]
    assert [g for g in x3 if g] == [{"latency_ms": 4.003106}, {"fps": 244.204717}]


def test_frame_counter_survives_app_restarts():
    stats = LogStats()
    for frames in (200, 400, 200, 400, 600):
        stats.update("m", {"frames": frames})
    assert stats.frames == {"m": 1000}


def test_user_regex_needs_a_named_group():
    try:
        LogPattern(["latency (\\d+)"])
    except ValueError as e:
        assert "named groups" in str(e)
    else:
        raise AssertionError("accepted a regex without named groups")
    p = LogPattern.named_or_regex(r"infer (?P<latency_ms>\S+) ms")
    assert p.extract("infer 7.5 ms") == {"latency_ms": 7.5}
    assert p.extract("infer nan ms") == {}
    assert p.extract("infer -3 ms") == {}
    assert p.extract("infer 1e999 ms") == {}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_patterns_never_raise_on_junk(line):
    for values in (HRT.extract(line), LogPattern([r"(?P<fps>.*)"]).extract(line)):
        assert all(v >= 0 and v != float("inf") for v in values.values())


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**9), st.floats(0, 1e5), st.floats(0, 1e6), st.text(max_size=20))
def test_generated_hrt_lines_round_trip(frames, avg, fps, prefix):
    line = "%sFrame count: %d,  Thread Average: %.6f ms,  thread max latency: 1.0 ms,  " \
           "thread min latency: 0.5 ms,  FPS: %.6f" % (prefix, frames, avg, fps)
    assert HRT.extract(line) == {"frames": frames, "latency_ms": float("%.6f" % avg),
                                 "fps": float("%.6f" % fps)}


def test_agent_tails_a_log_through_rotation(tmp_path):
    log = tmp_path / "perf.log"
    log.write_text("")
    config = ('[logtail]\npoll_interval = 0.05\n[logtail.bench]\npath = "%s"\n'
              'model = "yolov8"\npattern = "hrt_model_exec"\n' % log)
    line = ("Frame count: %d,  Thread Average: %s ms,  thread max latency: 1.1 ms,  "
            "thread min latency: 0.6 ms,  FPS: %s\n")
    with statsd_agent(tmp_path, config) as (base, _):
        _append(log, line % (200, "0.721070", "2720.5"))
        s = wait_for(base, lambda s: value(s, "board_inference_frames_total", model="yolov8"))
        assert value(s, "board_inference_frames_total", model="yolov8") == 200
        assert value(s, "board_inference_average_latency_seconds", model="yolov8") == 0.00072107
        assert value(s, "board_inference_fps", model="yolov8") == 2720.5
        _append(log, line % (400, "0.8", "2700"))
        os.rename(log, tmp_path / "perf.log.1")
        log.write_text(line % (200, "12.5", "80.25"))
        s = wait_for(base, lambda s: value(s, "board_inference_frames_total",
                                           model="yolov8") == 600)
        assert value(s, "board_inference_average_latency_seconds", model="yolov8") == 0.0125
        assert value(s, "board_inference_fps", model="yolov8") == 80.25
