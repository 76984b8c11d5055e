"""Config file and flags: precedence, and errors that name the file and the setting."""

import subprocess

import pytest
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
