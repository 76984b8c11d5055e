"""``boardfleet-agent``: serve a board's telemetry as Prometheus metrics."""

import argparse
import os
import signal
import sys
from typing import List, Optional, Tuple

from boardfleet_agent import __version__
from boardfleet_agent.app import Agent
from boardfleet_agent.collectors import CATALOG, Entry
from boardfleet_agent.config import (
    DEFAULT_COLLECTOR_TIMEOUT,
    DEFAULT_LISTEN,
    DEFAULT_SAMPLE_INTERVAL,
    PLATFORM_CHOICES,
    AgentConfig,
    ConfigError,
    load_file,
)
from boardfleet_agent.log import log, to_stream
from boardfleet_agent.registry import all_collectors
from boardfleet_agent.wakeup import Wakeup
from boardfleet_agent.web.config import WebConfig, load_web_config
from boardfleet_agent.web.listen import parse_listen
from boardfleet_agent.web.server import MetricsServer

DESCRIPTION = """\
Serve an embedded AI board's telemetry (accelerator memory, DDR bandwidth, CPU,
temperatures) as Prometheus metrics on /metrics.

Every file is read under --sysroot, so the agent can run against a copy of a board's
/proc and /sys. Slow sources (MMZ, vendor DDR tools) are sampled in the background and
served from a cache. Settings come from defaults, then --config FILE (TOML), then flags.
"""

EPILOG = """\
examples:
  boardfleet-agent                                   serve on %s
  boardfleet-agent --once --sysroot tests/fixtures/hi3516ev200
  boardfleet-agent --no-collector.processes --collector.mmz
  boardfleet-agent --list-collectors
""" % DEFAULT_LISTEN


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="boardfleet-agent", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=_HelpFormatter)
    p.add_argument("--config", metavar="FILE", help="TOML config file (same settings as flags)")
    p.add_argument("--sysroot", metavar="DIR",
                   help="root under which /proc, /sys and tools are read (default /)")
    p.add_argument("--platform", choices=PLATFORM_CHOICES,
                   help="vendor platform; auto detects it from the sysroot (default auto)")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="HTTP listen address (default %s)" % DEFAULT_LISTEN)
    p.add_argument("--sample-interval", type=_seconds, metavar="SECONDS",
                   help="how often collectors are sampled; a scrape serves the last "
                        "sample (default %g; a collector's own interval wins)"
                        % DEFAULT_SAMPLE_INTERVAL)
    p.add_argument("--collector-timeout", type=_seconds, metavar="SECONDS",
                   help="a collector run still going after this long (a blocked read) "
                        "is served as failed and not run again until it returns "
                        "(default %g)" % DEFAULT_COLLECTOR_TIMEOUT)
    p.add_argument("--statsd-listen", metavar="HOST:PORT",
                   help="UDP address for StatsD inference timings, or 'off' "
                        "(default 127.0.0.1:8125)")
    p.add_argument("--web.config.file", dest="web_config", metavar="FILE",
                   help="exporter-toolkit web config (YAML): TLS, client certificates, bcrypt "
                        "basic auth and response headers for /metrics")
    p.add_argument("--once", action="store_true",
                   help="print one scrape's metrics to stdout and exit")
    p.add_argument("--list-collectors", action="store_true",
                   help="list collectors, their platforms and defaults, and exit")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    p.add_argument("--version", action="version", version="%(prog)s " + __version__)
    g = p.add_argument_group("collectors", "enable or disable collectors one by one")
    g.add_argument("--collector.disable-defaults", dest="disable_defaults",
                   action="store_true", default=None,
                   help="run only the collectors enabled explicitly")
    for name, entry in sorted(CATALOG.items()):
        g.add_argument("--collector." + name, dest="c_" + name, action="store_true",
                       default=None, help=_collector_help(name, entry))
        g.add_argument("--no-collector." + name, dest="c_" + name, action="store_false",
                       help=argparse.SUPPRESS)
    g.add_argument("--collector.textfile.directory", dest="textfile_directory",
                   metavar="DIR", help="read *.prom files other tools write in DIR "
                                       "(enables the textfile collector)")
    return p


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's, given the terminal's width: left to itself, argparse of Python 3.9+
    imports ``shutil`` for it, and with it the ``bz2`` and ``lzma`` modules (issue 18)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_columns() - 2)


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: $COLUMNS, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
            columns = 0
    return columns if columns > 0 else 80


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be 0.05 to 3600 seconds, got %r" % text)
    return value


def _collector_help(name: str, entry: Entry) -> str:
    where = ", ".join(sorted(entry.platforms)) if entry.platforms else "all platforms"
    state = "on" if entry.default_enabled else "off"
    return "%s [%s; default %s; --no-collector.%s disables]" % (entry.help, where, state, name)


def resolve_config(args: argparse.Namespace) -> AgentConfig:
    cfg = load_file(args.config) if args.config else AgentConfig()
    for key in ("sysroot", "platform", "listen", "log_level", "sample_interval",
                "collector_timeout"):
        value = getattr(args, key)
        if value is not None:
            setattr(cfg, key, value)
    if args.statsd_listen is not None:
        cfg.sections.setdefault("statsd", {})["listen"] = args.statsd_listen
    if args.textfile_directory is not None:
        cfg.collectors.setdefault("textfile", {})["directory"] = args.textfile_directory
    if args.disable_defaults:
        cfg.disable_defaults = True
    for name in CATALOG:
        choice = getattr(args, "c_" + name)
        if choice is not None:
            cfg.set_enabled(name, choice)
    return cfg


def list_collectors(out=sys.stdout) -> None:
    for name, cls in all_collectors().items():
        where = ",".join(sorted(cls.platforms)) or "all"
        every = "every %gs" % cls.default_interval if cls.default_interval else "every sample"
        mode = ("own thread, " if cls.background else "") + every
        out.write("%-14s %-4s %-22s %-22s %s\n" % (
            name, "on" if cls.default_enabled else "off", where, mode, cls.help))


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = resolve_config(args)
    except ConfigError as e:
        sys.stderr.write("boardfleet-agent: %s\n" % e)
        return 2
    to_stream(cfg.log_level)
    if args.list_collectors:
        list_collectors()
        return 0
    try:
        agent = Agent(cfg, background=not args.once)
        web = load_web_config(args.web_config) if args.web_config else WebConfig()
    except ConfigError as e:
        sys.stderr.write("boardfleet-agent: %s\n" % e)
        return 2
    if args.once:
        sys.stdout.write(agent.render().decode())
        return 0
    return serve(agent, web, args)


def _reload(args: argparse.Namespace, running: Agent) -> Tuple[Agent, WebConfig]:
    """Build a fresh agent from the config file and flags (for SIGHUP)."""
    cfg = resolve_config(args)
    web = load_web_config(args.web_config) if args.web_config else WebConfig()
    return Agent(cfg, previous=running), web


def serve(agent: Agent, web: WebConfig, args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; SIGHUP re-reads the config and web config files.

    A config that fails to load on SIGHUP is logged and the running one is kept. The
    listen address is fixed at start.
    """
    listen = agent.cfg.listen
    try:
        server = MetricsServer(parse_listen(listen), agent.render, agent.platform, web,
                               agent.healthy)
    except (ValueError, OSError) as e:
        sys.stderr.write("boardfleet-agent: cannot listen on %s: %s\n" % (listen, e))
        return 2
    signals: List[int] = []
    wakeup = Wakeup()
    # Any thread may receive the signal; the wakeup fd ends the main thread's sleep,
    # whose Python handler then runs.
    signal.set_wakeup_fd(wakeup.signal_fd)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda signum, _frame: signals.append(signum))
    agent.start()
    server.serve_in_thread()
    log.info("boardfleet-agent %s serving %s (platform %s, sysroot %s, %d collectors)",
             __version__, listen, agent.platform, agent.cfg.sysroot, len(agent.collectors))
    while True:
        while not signals:
            wakeup.sleep(5.0)
        # SIGTERM/SIGINT win over reloads queued before them; SIGHUPs that piled up
        # during one reload are one reload.
        if any(signum != signal.SIGHUP for signum in signals):
            break
        del signals[:]
        try:
            fresh, fresh_web = _reload(args, agent)
        except (ConfigError, OSError) as e:
            log.error("reload failed, keeping the running config: %s", e)
            continue
        except Exception:  # a config no check foresaw must not end the agent
            log.exception("reload failed, keeping the running config")
            continue
        agent.stop(successor=fresh)
        fresh.start()
        server.render, server.web, server.platform, server.health = (
            fresh.render, fresh_web, fresh.platform, fresh.healthy)
        agent = fresh
        log.info("config reloaded (%d collectors)", len(agent.collectors))
    log.info("stopping")
    server.shutdown()
    server.server_close()
    agent.stop()
    signal.set_wakeup_fd(-1)
    wakeup.close()
    return 0
