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

Every key and table the file may hold is declared once, in :data:`SCHEMA`; anything
else is refused with the file and the key named. The file is parsed by ``tomllib``
(Python 3.11+) or ``tomli`` (the same parser, which the agent bundle carries for older
Pythons).
"""

import sys
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple

from boardfleet_agent.collectors import CATALOG

DEFAULT_PORT = 9776
DEFAULT_LISTEN = "0.0.0.0:%d" % DEFAULT_PORT
DEFAULT_SAMPLE_INTERVAL = 1.0
DEFAULT_COLLECTOR_TIMEOUT = 5.0
PLATFORM_CHOICES = ("auto", "hisi", "horizon", "snapdragon", "generic")
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """The config file is unreadable or holds a bad setting; the message names it."""


class Value(NamedTuple):
    """One setting: its kind, and for ``choice`` the values allowed.

    Kinds: ``str``, ``bool``, ``choice``, ``seconds`` (0.05 to 3600), ``positive`` (a
    number above 0), ``count`` (an integer above 0), ``integer``, ``number``,
    ``strings`` (a list of strings).
    """

    kind: str
    choices: Tuple[str, ...] = ()


# A table's schema: its keys, each a setting or a sub-table's schema; key "*" stands for
# any other key (named sub-tables, such as one per followed log file).
# COLLECTORS stands for one table per catalogued collector: enabled, interval, and the
# collector's own ``defaults`` (typed by their default values).
COLLECTORS = "collectors"
Schema = Mapping[str, Any]

SCHEMA: Schema = {
    "listen": Value("str"),
    "sysroot": Value("str"),
    "platform": Value("choice", PLATFORM_CHOICES),
    "log_level": Value("choice", LOG_LEVELS),
    "disable_defaults": Value("bool"),
    "sample_interval": Value("seconds"),
    "collector_timeout": Value("seconds"),
    "collectors": COLLECTORS,
    "statsd": {"listen": Value("str"), "max_packet_bytes": Value("count")},
    "inference": {
        "tags": Value("strings"), "max_models": Value("count"), "max_series": Value("count"),
        "max_series_per_model": Value("count"),
    },
    "logtail": {
        "poll_interval": Value("positive"),
        "*": {"path": Value("str"), "model": Value("str"), "pattern": Value("str"),
              "from_start": Value("bool")},
    },
}
TOP_SETTINGS = tuple(k for k, v in SCHEMA.items() if isinstance(v, Value))
# The tables besides [collectors] that other parts of the agent read (AgentConfig.sections).
SECTIONS = tuple(k for k, v in SCHEMA.items() if isinstance(v, Mapping))


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
        # The other tables ([statsd], [inference], [logtail]) for the parts that read them.
        self.sections: Dict[str, Dict[str, Any]] = {}
        self.path: Optional[str] = None

    def enabled_choices(self) -> Dict[str, bool]:
        """Explicit enable/disable choices, for :func:`registry.collectors_for`.

        A collector naming an ``enabled_by`` setting (the textfile collector's
        ``directory``) is enabled when that setting is given, unless disabled explicitly.
        """
        out = {name: False for name in CATALOG} if self.disable_defaults else {}
        for name, table in self.collectors.items():
            enabled_by = CATALOG[name].enabled_by
            if "enabled" in table:
                out[name] = bool(table["enabled"])
            elif enabled_by and table.get(enabled_by):
                out[name] = True
        return out

    def intervals(self) -> Dict[str, float]:
        return {n: float(t["interval"]) for n, t in self.collectors.items() if "interval" in t}

    def set_enabled(self, name: str, enabled: bool) -> None:
        self.collectors.setdefault(name, {})["enabled"] = enabled


def parse_toml(text: str) -> Dict[str, Any]:
    """TOML text as nested dicts; ValueError (with line and column) if it is not TOML."""
    if sys.version_info >= (3, 11):
        import tomllib as toml  # novermin (only reached on 3.11+)
    else:
        import tomli as toml
    try:
        return toml.loads(text)
    except toml.TOMLDecodeError as e:
        raise ValueError(str(e)) from None


def read_toml_file(path: str, what: str) -> Dict[str, Any]:
    """A TOML file's tables; ConfigError names ``what`` and the file on any problem."""
    try:
        with open(path, encoding="utf-8") as f:
            return parse_toml(f.read())
    except OSError as e:
        raise ConfigError("cannot read %s %s: %s" % (what, path, e.strerror)) from None
    except ValueError as e:  # also UnicodeDecodeError
        raise ConfigError("%s %s: %s" % (what, path, e)) from None


def load_file(path: str, cfg: Optional[AgentConfig] = None) -> AgentConfig:
    """Read a TOML config file into ``cfg`` (a fresh default config if omitted)."""
    cfg = cfg or AgentConfig()
    data = read_toml_file(path, "config file")
    check(data, "config file %s: " % path)
    cfg.path = path
    for key in TOP_SETTINGS:
        if key in data:
            value = data[key]
            setattr(cfg, key, float(value) if SCHEMA[key] == Value("seconds") else value)
    for name, table in data.get("collectors", {}).items():
        cfg.collectors.setdefault(name, {}).update(table)
    for key in SECTIONS:
        if key in data:
            cfg.sections[key] = data[key]
    return cfg


def check(data: Mapping[str, Any], where: str) -> None:
    """ConfigError (prefixed by ``where``) unless ``data`` follows :data:`SCHEMA`."""
    _check_table(data, SCHEMA, where, "")


def _check_table(data: Mapping[str, Any], schema: Any, where: str, prefix: str) -> None:
    for key, value in data.items():
        name = prefix + key
        spec = schema.get(key, schema.get("*"))
        if spec is None:
            what = "table" if isinstance(value, dict) else "setting"
            known = ", ".join(k for k in schema if k != "*")
            raise ConfigError("%s%s: unknown %s (known: %s)" % (where, name, what, known))
        if spec == COLLECTORS:
            _need_table(value, where, name)
            _check_collectors(value, where, name + ".")
        elif isinstance(spec, Mapping):
            _need_table(value, where, name)
            _check_table(value, spec, where, name + ".")
        else:
            _check_value(value, spec, where + name)


def _need_table(value: Any, where: str, name: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError("%s%s must be a table" % (where, name))


def _check_collectors(data: Mapping[str, Any], where: str, prefix: str) -> None:
    from boardfleet_agent.registry import collector_class

    for name, table in data.items():
        if name not in CATALOG:
            raise ConfigError("%s%s%s: unknown collector (known: %s)"
                              % (where, prefix, name, ", ".join(sorted(CATALOG))))
        _need_table(table, where, prefix + name)
        # The collector's own settings are known to its class: imported only if named.
        own = any(k not in EVERY_COLLECTOR for k in table)
        _check_table(table, collector_schema(collector_class(name).defaults if own else {}),
                     where, prefix + name + ".")


# The keys of every collector's table; others are the collector's own settings.
EVERY_COLLECTOR = {"enabled": Value("bool"), "interval": Value("positive")}


def collector_schema(defaults: Mapping[str, Any]) -> Dict[str, Value]:
    """A collector's table: enabled, interval, and its settings typed by their defaults."""
    out = {k: Value(_KIND_OF[type(v)]) for k, v in defaults.items()}
    out.update(EVERY_COLLECTOR)
    return out


_KIND_OF = {str: "str", bool: "bool", int: "integer", float: "number", list: "strings"}


def _check_value(value: Any, spec: Value, where: str) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    kind = spec.kind
    problem = None
    if kind == "str" and not isinstance(value, str):
        problem = "must be a string"
    elif kind == "bool" and not isinstance(value, bool):
        problem = "must be true or false"
    elif kind == "choice" and value not in spec.choices:
        problem = "must be one of %s" % ", ".join(spec.choices)
    elif kind == "seconds" and not (number and 0.05 <= value <= 3600):
        problem = "must be 0.05 to 3600 seconds"
    elif kind == "positive" and not (number and value > 0):
        problem = "must be a positive number of seconds"
    elif kind == "count" and not (number and isinstance(value, int) and value > 0):
        problem = "must be a positive integer"
    elif kind == "integer" and not (number and isinstance(value, int)):
        problem = "must be an integer"
    elif kind == "number" and not number:
        problem = "must be a number"
    elif kind == "strings" and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)):
        problem = "must be a list of strings"
    if problem:
        raise ConfigError("%s %s" % (where, problem))
