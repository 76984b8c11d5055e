"""Config file and flags: precedence, and errors that name the file and the setting."""

import re
import subprocess
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.agent import agent_cmd, run_once
from support.paths import FIXTURES

from boardfleet_agent.cli import build_parser, resolve_config
from boardfleet_agent.config import ConfigError, load_file

GENERIC = str(FIXTURES / "generic")


def _cfg(tmp_path, text: str, *flags: str):
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return resolve_config(build_parser().parse_args(["--config", str(path), *flags]))


def test_flags_override_the_config_file(tmp_path) -> None:
    cfg = _cfg(tmp_path, 'listen = "127.0.0.1:1"\n[collectors.thermal]\nenabled = false\n',
               "--listen", "127.0.0.1:2", "--collector.thermal")
    assert cfg.listen == "127.0.0.1:2"
    assert cfg.enabled_choices()["thermal"] is True


def test_disable_defaults_keeps_only_explicit_collectors(tmp_path) -> None:
    cfg = _cfg(tmp_path, "disable_defaults = true\n[collectors.memory]\nenabled = true\n")
    choices = cfg.enabled_choices()
    assert choices["memory"] is True
    assert choices["cpu"] is False


@pytest.mark.parametrize("text, fragment", [
    ("platform = \"vax\"\n", "platform must be one of"),
    ("[collectors.nope]\nenabled = true\n", "unknown collector"),
    ("[collectors.mmz]\ninterval = -1\n", "interval must be a positive"),
    ("[collectors.processes]\nnames = 3\n", "names must be a list"),
    ("[collectors.cpu]\ncolour = 1\n", "unknown setting"),
    ("listen = \n", "agent.toml"),
    ("mystery = 1\n", "unknown setting"),
    ("sample_interval = 0\n", "sample_interval must be 0.05 to 3600 seconds"),
    ("sample_interval = \"1s\"\n", "sample_interval must be 0.05 to 3600 seconds"),
])
def test_bad_settings_name_the_file_and_key(tmp_path, text: str, fragment: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_file(str(path))
    assert fragment in str(e.value)
    assert str(path) in str(e.value)


def test_missing_config_file_is_a_clean_exit_2(tmp_path) -> None:
    r = subprocess.run(agent_cmd("--config", str(tmp_path / "absent.toml"), "--once"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "absent.toml" in r.stderr
    assert "Traceback" not in r.stderr


def test_no_collector_flag_removes_its_metrics() -> None:
    text = run_once(GENERIC, "--no-collector.thermal")
    assert "board_temperature_celsius" not in text
    assert "board_cpu_seconds_total" in text


def test_collector_settings_from_config_apply(tmp_path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[collectors.processes]\nnames = ["sshd"]\n')
    text = run_once(GENERIC, "--config", str(path))
    assert 'board_process_instances{process="sshd"} 1.0' in text
    assert "hrt_model_exec" not in text


def test_list_collectors_names_each_one() -> None:
    r = subprocess.run(agent_cmd("--list-collectors"), capture_output=True, text=True,
                       timeout=30, check=True)
    names = {line.split()[0] for line in r.stdout.splitlines()}
    assert {"cpu", "memory", "thermal", "processes", "info"} <= names


def test_sample_interval_from_file_and_flag(tmp_path) -> None:
    assert _cfg(tmp_path, "").sample_interval == 1.0
    assert _cfg(tmp_path, "sample_interval = 5\n").sample_interval == 5.0
    assert _cfg(tmp_path, "sample_interval = 5\n", "--sample-interval", "0.5"
                ).sample_interval == 0.5
    r = subprocess.run(agent_cmd("--sample-interval", "0", "--once"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "--sample-interval: must be 0.05 to 3600 seconds" in r.stderr


@pytest.mark.parametrize("text, fragment", [
    ("[inferense]\ntags = []\n", "inferense: unknown table"),
    ("listn = \"0.0.0.0:1\"\n", "listn: unknown setting"),
    ("[statsd]\nlistn = \"127.0.0.1:1\"\n", "statsd.listn: unknown setting"),
    ("[logtail.yolo]\npaht = \"/x\"\n", "logtail.yolo.paht: unknown setting"),
    ("[logtail]\nyolo = 3\n", "logtail.yolo must be a table"),
    ("[inference]\nmax_models = 0\n", "inference.max_models must be a positive integer"),
    ("[collectors.ion]\nmax_processes = 1.5\n", "collectors.ion.max_processes must be an integer"),
    ("log_level = \"loud\"\n", "log_level must be one of"),
    ("collectors = 3\n", "collectors must be a table"),
])
def test_unknown_keys_and_tables_are_refused_everywhere(tmp_path, text: str,
                                                        fragment: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="config file %s: " % re.escape(str(path))) as e:
        load_file(str(path))
    assert fragment in str(e.value)


def test_every_documented_table_loads(tmp_path) -> None:
    cfg = _cfg(tmp_path, textwrap.dedent("""\
        sysroot = "C:\\\\"  # c
        [statsd]
        listen = "off"
        max_packet_bytes = 8192
        [inference]
        tags = ["backend", "stage"]
        max_models = 5
        max_series = 50
        max_series_per_model = 5
        [logtail]
        poll_interval = 0.5
        [logtail.yolo]
        path = "/var/log/yolo.log"
        model = "yolov8"
        pattern = "hrt_model_exec"
        from_start = true
        [collectors.horizon_ddr]
        peak_bytes_per_second = 1
        """))
    assert cfg.sysroot == "C:\\"
    assert cfg.sections["logtail"]["yolo"]["from_start"] is True
    assert cfg.sections["statsd"]["listen"] == "off"
    assert cfg.collectors["horizon_ddr"]["peak_bytes_per_second"] == 1


@pytest.mark.parametrize("text", [
    "x = 01\n",  # leading zeros
    "[statsd]\nlisten = \"a\"\n[statsd]\nmax_packet_bytes = 1\n",  # a table twice
    "[logtail]\nyolo.path = \"/x\"\n[logtail.yolo]\nmodel = \"m\"\n",  # dotted table redefined
    "listen = \"a\"\nlisten = \"b\"\n",
])
def test_invalid_toml_is_refused_with_its_line(tmp_path, text: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"config file %s: .*line \d" % re.escape(str(path))):
        load_file(str(path))


TOML_BITS = st.sampled_from([
    "\n", " ", "=", "[", "]", "[[", ".", ",", "#", '"', "'", '"""', "\\", "0", "01", "1.5",
    "-", "true", "inf", "nan", "1979-05-27", "{", "}", "collectors", "mmz", "statsd",
    "logtail", "yolo", "listen", "interval", "names", "enabled", "sample_interval", "\x00",
    "é", "\r\n", "\t",
])


@given(st.one_of(st.text(max_size=200), st.lists(TOML_BITS, max_size=40).map("".join)))
@settings(max_examples=300, deadline=None)
def test_any_text_gives_a_config_or_a_config_error(tmp_path_factory, text: str) -> None:
    path = tmp_path_factory.mktemp("cfg") / "agent.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        load_file(str(path))
    except ConfigError as e:
        assert str(path) in str(e)


@given(st.binary(max_size=100))
@settings(max_examples=100, deadline=None)
def test_any_bytes_give_a_config_or_a_config_error(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("cfg") / "agent.toml"
    path.write_bytes(data)
    try:
        load_file(str(path))
    except ConfigError as e:
        assert str(path) in str(e)
