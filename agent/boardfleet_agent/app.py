"""Assembles an agent from its config: source, platform, collectors and registry."""

from typing import TYPE_CHECKING, List, Optional, Tuple

from boardfleet_agent import inference
from boardfleet_agent.config import AgentConfig
from boardfleet_agent.exposition import render
from boardfleet_agent.platform import detect
from boardfleet_agent.registry import Collector, collectors_for
from boardfleet_agent.runner import ScrapeRunner
from boardfleet_agent.selfstats import SelfStats
from boardfleet_agent.source import LocalSource, Source

if TYPE_CHECKING:
    from boardfleet_agent.inference.pipeline import Inference


class Agent:
    """A configured agent: call :meth:`start` to begin background sampling."""

    def __init__(self, cfg: AgentConfig, src: Optional[Source] = None,
                 background: bool = True, previous: Optional["Agent"] = None) -> None:
        """``previous``: the agent this one replaces on SIGHUP. Its inference intake
        (histograms, model loads, StatsD socket) is kept if its settings are unchanged,
        so that a reload loses no timings."""
        self.cfg = cfg
        self.src = src or LocalSource(cfg.sysroot)
        self.platform = detect(self.src) if cfg.platform == "auto" else cfg.platform
        self.collectors: List[Collector] = [
            cls(cfg.collectors.get(cls.name, {}), platform=self.platform)
            for cls in collectors_for(self.platform, cfg.enabled_choices())
        ]
        self.runner = ScrapeRunner(self.collectors, self.src, cfg.intervals(),
                                   background=background, interval=cfg.sample_interval,
                                   timeout=cfg.collector_timeout, on_demand=True)
        # Rendered on every scrape: cheap, and current to the moment of the scrape.
        # The agent's own CPU, RSS and fds (process_*), for overhead and soak checks.
        self.selfstats = SelfStats()
        # StatsD latency intake, log tails and model loads ([statsd], [inference], [logtail]);
        # None when the config turns them all off.
        self.inference: Optional[Inference] = None
        if previous is not None and previous.inference is not None and (
                previous.inference.settings == inference.settings_of(cfg.sections)
                and previous.cfg.sysroot == cfg.sysroot):
            self.inference = previous.inference
        elif inference.wanted(cfg.sections):
            from boardfleet_agent.inference import pipeline

            self.inference = pipeline.Inference(cfg.sections, self.src)
        else:
            inference.tags_of(cfg.sections)  # a bad [inference] table is told all the same
        # The memory collectors publish per-PID bytes for model loads (no reads on events).
        for c in self.collectors:
            c.pid_memory = self.inference.memory if self.inference is not None else None

    def render(self) -> bytes:
        """One scrape's exposition text: the board's last sample, then live metrics."""
        out = self.runner.exposition() + render(self.selfstats.collect())
        return out + render(self.inference.collect()) if self.inference is not None else out

    def healthy(self) -> Tuple[bool, str]:
        """Whether sampling goes on (for ``/-/healthy``), and why not."""
        return self.runner.healthy()

    def start(self) -> None:
        self.runner.start()
        if self.inference is not None:
            self.inference.start()

    def stop(self, successor: Optional["Agent"] = None) -> None:
        """Stop sampling, and the inference intake unless ``successor`` took it over."""
        self.runner.stop()
        if self.inference is not None and (
                successor is None or successor.inference is not self.inference):
            self.inference.stop()
