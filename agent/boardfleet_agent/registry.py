"""The collector registry: every collector registers itself with a name and defaults.

Like node_exporter's ``registerCollector``: registration gives each collector its
``--collector.<name>`` / ``--no-collector.<name>`` flags and its config-file table.
"""

import importlib
from typing import Any, ClassVar, Dict, FrozenSet, Iterator, List, Mapping, Optional, Tuple, Type

from boardfleet_agent.families import Metric
from boardfleet_agent.parsers.lines import Skips
from boardfleet_agent.procs import PidMemory
from boardfleet_agent.source import Source

PLATFORMS = ("hisi", "horizon", "snapdragon", "generic")


class Collector:
    """One kind of board data, turned into metric families.

    Subclasses set the class attributes and implement :meth:`collect`, which yields
    fresh families on every call. It raises :class:`~boardfleet_agent.errors.NoData`
    when the hardware is absent; any other exception marks the collector as failed,
    while the families already yielded are still served (as node_exporter does).
    """

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    # Platforms the collector runs on; empty means every platform (a generic collector).
    platforms: ClassVar[FrozenSet[str]] = frozenset()
    default_enabled: ClassVar[bool] = True
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
_SCANNED = False


def register(cls: Type[Collector]) -> Type[Collector]:
    """Class decorator adding a collector to the registry."""
    if not cls.name or cls.name in _REGISTRY:
        raise ValueError("collector name missing or registered twice: %r" % cls.name)
    _REGISTRY[cls.name] = cls
    return cls


def all_collectors() -> Dict[str, Type[Collector]]:
    """Every registered collector class, importing the ``collectors`` package once.

    Other modules may import single collectors earlier; the package scan still runs.
    """
    global _SCANNED
    if not _SCANNED:
        from boardfleet_agent import collectors

        for name in collectors.MODULES:
            importlib.import_module("boardfleet_agent.collectors." + name)
        _SCANNED = True
    return dict(sorted(_REGISTRY.items()))


def collectors_for(platform: str, enabled: Mapping[str, bool]) -> List[Type[Collector]]:
    """Collector classes to run on ``platform``, given explicit enable/disable choices.

    A collector runs when it is explicitly enabled, or when it is enabled by default and
    either generic or made for this platform.
    """
    out = []
    for name, cls in all_collectors().items():
        choice = enabled.get(name)
        if choice is None:
            choice = cls.default_enabled and (not cls.platforms or platform in cls.platforms)
        if choice:
            out.append(cls)
    return out
