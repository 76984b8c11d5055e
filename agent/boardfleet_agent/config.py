"""Agent settings: defaults, then the TOML config file, then command-line flags.

The config file holds the same settings as the flags::

    listen = "0.0.0.0:9776"
    sysroot = "/"
    platform = "auto"            # auto | hisi | horizon | snapdragon | generic
    disable_defaults = false     # run only collectors enabled explicitly
    sample_interval = 1          # seconds between samples; scrapes serve the last one
    collector_timeout = 5        # seconds a collector run may take before it is given up

    [collectors.mmz]
    enabled = true
    interval = 10                # seconds between background samples

    [collectors.processes]
    names = ["hrt_model_exec", "sample_nnie"]
"""

import sys
from typing import Any, Dict, Optional

DEFAULT_PORT = 9776
DEFAULT_LISTEN = "0.0.0.0:%d" % DEFAULT_PORT
DEFAULT_SAMPLE_INTERVAL = 1.0
DEFAULT_COLLECTOR_TIMEOUT = 5.0
PLATFORM_CHOICES = ("auto", "hisi", "horizon", "snapdragon", "generic")


class ConfigError(ValueError):
    """The config file is unreadable or holds a bad setting; the message names it."""


class AgentConfig:
    """Resolved agent settings."""

    def __init__(self) -> None:
        self.listen = DEFAULT_LISTEN
        self.sysroot = "/"
        self.platform = "auto"
        self.disable_defaults = False
        self.log_level = "info"
        self.sample_interval = DEFAULT_SAMPLE_INTERVAL
        self.collector_timeout = DEFAULT_COLLECTOR_TIMEOUT
        # Per collector: {"enabled": bool, "interval": float, <collector settings>}.
        self.collectors: Dict[str, Dict[str, Any]] = {}
        # Other top-level tables (for example [statsd]) for the parts that read them.
        self.sections: Dict[str, Dict[str, Any]] = {}
        self.path: Optional[str] = None

    def enabled_choices(self) -> Dict[str, bool]:
        """Explicit enable/disable choices, for :func:`registry.collectors_for`."""
        from boardfleet_agent.registry import all_collectors

        out = {name: False for name in all_collectors()} if self.disable_defaults else {}
        for name, table in self.collectors.items():
            if "enabled" in table:
                out[name] = bool(table["enabled"])
        return out

    def intervals(self) -> Dict[str, float]:
        return {n: float(t["interval"]) for n, t in self.collectors.items() if "interval" in t}

    def set_enabled(self, name: str, enabled: bool) -> None:
        self.collectors.setdefault(name, {})["enabled"] = enabled


def parse_toml(text: str) -> Dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib  # novermin (only reached on 3.11+)

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(str(e)) from None
    from boardfleet_agent.tomlsubset import loads

    return loads(text)


def read_toml_file(path: str, what: str) -> Dict[str, Any]:
    """A TOML file's tables; ConfigError names ``what`` and the file on any problem."""
    try:
        with open(path, encoding="utf-8") as f:
            return parse_toml(f.read())
    except OSError as e:
        raise ConfigError("cannot read %s %s: %s" % (what, path, e.strerror)) from None
    except ValueError as e:
        raise ConfigError("%s %s: %s" % (what, path, e)) from None


def load_file(path: str, cfg: Optional[AgentConfig] = None) -> AgentConfig:
    """Read a TOML config file into ``cfg`` (a fresh default config if omitted)."""
    from boardfleet_agent.registry import all_collectors

    cfg = cfg or AgentConfig()
    data = read_toml_file(path, "config file")
    cfg.path = path
    known = all_collectors()
    for key, value in data.items():
        where = "config file %s: %s" % (path, key)
        if key in ("listen", "sysroot", "platform", "log_level"):
            if not isinstance(value, str):
                raise ConfigError("%s must be a string" % where)
            if key == "platform" and value not in PLATFORM_CHOICES:
                raise ConfigError("%s must be one of %s" % (where, ", ".join(PLATFORM_CHOICES)))
            setattr(cfg, key, value)
        elif key in ("sample_interval", "collector_timeout"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0.05 <= value <= 3600):
                raise ConfigError("%s must be 0.05 to 3600 seconds" % where)
            setattr(cfg, key, float(value))
        elif key == "disable_defaults":
            if not isinstance(value, bool):
                raise ConfigError("%s must be true or false" % where)
            cfg.disable_defaults = value
        elif key == "collectors":
            if not isinstance(value, dict):
                raise ConfigError("%s must be a table" % where)
            for name, table in value.items():
                if name not in known:
                    raise ConfigError("%s.%s: unknown collector (known: %s)"
                                      % (where, name, ", ".join(known)))
                if not isinstance(table, dict):
                    raise ConfigError("%s.%s must be a table" % (where, name))
                _check_collector_table(where + "." + name, table, known[name].defaults)
                cfg.collectors.setdefault(name, {}).update(table)
        elif isinstance(value, dict):
            cfg.sections[key] = value
        else:
            raise ConfigError("%s: unknown setting" % where)
    return cfg


def _check_collector_table(where: str, table: Dict[str, Any], defaults: Any) -> None:
    for k, v in table.items():
        if k == "enabled":
            if not isinstance(v, bool):
                raise ConfigError("%s.enabled must be true or false" % where)
        elif k == "interval":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ConfigError("%s.interval must be a positive number of seconds" % where)
        elif k not in defaults:
            raise ConfigError("%s.%s: unknown setting (known: enabled, interval%s)"
                              % (where, k, "".join(", " + d for d in defaults)))
        elif type(defaults[k]) is not type(v) and not (
                isinstance(defaults[k], float) and isinstance(v, int)):
            raise ConfigError("%s.%s must be a %s" % (where, k, type(defaults[k]).__name__))
