"""The collector registry: every collector registers itself under its catalogue name.

Like node_exporter's ``registerCollector``: the catalogue (``collectors.CATALOG``) gives
each collector its ``--collector.<name>`` / ``--no-collector.<name>`` flags and its
config-file table; a collector's module is imported only when it runs, is listed, is
given settings in the config file, or serves an agentless probe.
"""

import importlib
from typing import Any, ClassVar, Dict, FrozenSet, Iterator, List, Mapping, Optional, Tuple, Type

from boardfleet_agent.collectors import CATALOG
from boardfleet_agent.families import Metric
from boardfleet_agent.parsers.lines import Skips
from boardfleet_agent.procs import PidMemory
from boardfleet_agent.source import Source

PLATFORMS = ("hisi", "horizon", "snapdragon", "generic")


class Collector:
    """One kind of board data, turned into metric families.

    Subclasses set ``name`` and how they read (the attributes from ``background`` on;
    ``@register`` sets the four above those from the catalogue) and implement
    :meth:`collect`, which yields fresh families on every call. It raises
    :class:`~boardfleet_agent.errors.NoData` when the hardware is absent; any other
    exception marks the collector as failed, while the families already yielded are
    still served (as node_exporter does).
    """

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    platforms: ClassVar[FrozenSet[str]] = frozenset()
    default_enabled: ClassVar[bool] = True
    enabled_by: ClassVar[str] = ""
    # Sampled in the background every ``interval`` seconds and served from a cache:
    # for sources that are slow, take a kernel lock, or run a vendor tool.
    background: ClassVar[bool] = False
    default_interval: ClassVar[float] = 0.0
    # Board paths (shell globs) the collector reads: what an agentless probe fetches.
    paths: ClassVar[Tuple[str, ...]] = ()
    # Per-process paths read besides ``paths`` only with ``process_names`` on (the agent;
    # never in a probe's batched read).
    process_paths: ClassVar[Tuple[str, ...]] = ()
    # False where fetching ``paths`` in a batched remote read would load a small board
    # too much (one ``cat`` per process or per fd); agentless probes skip it.
    agentless: ClassVar[bool] = True
    # Collector-specific settings and their defaults (overridable in the config file).
    defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, settings: Mapping[str, Any], platform: str = "generic") -> None:
        merged = dict(self.defaults)
        merged.update({k: v for k, v in settings.items() if k in self.defaults})
        self.settings = merged
        self.platform = platform
        # Lines its parsers skipped as unknown: board_collector_skipped_lines_total.
        self.skips = Skips(self.name)
        # Where collectors of per-process accelerator memory publish it by PID (the
        # agent sets it for model-load profiling; None in agentless probes).
        self.pid_memory: Optional[PidMemory] = None

    def collect(self, src: Source) -> Iterator[Metric]:
        raise NotImplementedError

    def publish_pid_memory(self, kind: str, by_pid: Dict[int, int], started: float) -> None:
        """Hand the bytes each PID holds, read by a run started at ``started``
        (monotonic), to model-load profiling, if the agent asked for them."""
        if self.pid_memory is not None:
            self.pid_memory.publish(kind, by_pid, started)


_REGISTRY: Dict[str, Type[Collector]] = {}


def register(cls: Type[Collector]) -> Type[Collector]:
    """Class decorator adding a collector to the registry, with its catalogue entry."""
    entry = CATALOG.get(cls.name)
    if entry is None or cls.name in _REGISTRY:
        raise ValueError("collector not in collectors.CATALOG or registered twice: %r"
                         % cls.name)
    cls.help, cls.platforms = entry.help, entry.platforms
    cls.default_enabled, cls.enabled_by = entry.default_enabled, entry.enabled_by
    _REGISTRY[cls.name] = cls
    return cls


def collector_class(name: str) -> Type[Collector]:
    """The class of the catalogued collector ``name``, its module imported on first use."""
    cls = _REGISTRY.get(name)
    if cls is None:
        if name not in CATALOG:
            raise KeyError(name)
        importlib.import_module("boardfleet_agent.collectors." + name)
        cls = _REGISTRY[name]
    return cls


def all_collectors() -> Dict[str, Type[Collector]]:
    """Every collector class by name, each module imported (for listings and probes)."""
    return {name: collector_class(name) for name in sorted(CATALOG)}


def collectors_for(platform: str, enabled: Mapping[str, bool]) -> List[Type[Collector]]:
    """Collector classes to run on ``platform``, given explicit enable/disable choices;
    only these are imported.

    A collector runs when it is explicitly enabled, or when it is enabled by default and
    either generic or made for this platform.
    """
    out = []
    for name, entry in sorted(CATALOG.items()):
        choice = enabled.get(name)
        if choice is None:
            choice = entry.default_enabled and (
                not entry.platforms or platform in entry.platforms)
        if choice:
            out.append(collector_class(name))
    return out
