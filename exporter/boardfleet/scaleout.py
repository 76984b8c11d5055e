"""Scale-out on VictoriaMetrics (Debian's ``victoria-metrics`` package): commands and
configs for the single-node server, ``vmagent`` scrape shards and ``vmalert``.

Two topologies, both fed from the same ``prometheus/prometheus.yml`` and rule files:

* **remote write** (shards = 0): the existing Prometheus scrapes, evaluates rules and
  alerts as before, and also ``remote_write``\\s every sample to VictoriaMetrics for long
  retention and a company-wide Grafana.
* **sharded** (shards >= 1): N ``vmagent`` processes read the same service discovery
  (file SD + the fleet service's HTTP SD); ``-promscrape.cluster.*`` gives each board to
  ``replication`` of them (hash of the target's labels), and they remote-write to
  VictoriaMetrics, which deduplicates replicated samples on read
  (``-dedup.minScrapeInterval``). ``vmalert`` evaluates the same generated rules against
  VictoriaMetrics, writes recording rules and ``ALERTS`` back, and notifies the same
  Alertmanager.

vmalert 1.79 (bookworm) predates ``keep_firing_for``: :func:`vmalert_rules` drops that
field (an alert resolves as soon as its condition clears, instead of holding; see
docs/scaleout.md).
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence

BINARIES = {"victoria-metrics": ("victoria-metrics",), "vmagent": ("vmagent",),
            "vmalert": ("vmalert",)}
# What vmagent reads of a Prometheus config (-promscrape.config.strictParse rejects the rest).
VMAGENT_KEYS = ("global", "scrape_configs")
VMAGENT_GLOBAL = ("scrape_interval", "scrape_timeout", "external_labels")
_KEEP_FIRING = re.compile(r"^\s*keep_firing_for:.*\n", re.M)


@dataclass
class VMPorts:
    victoriametrics: int = 8428
    vmagent: int = 8429  # shard i listens on vmagent + i
    vmalert: int = 8880


@dataclass
class Topology:
    """Where each VictoriaMetrics process listens and keeps its data, and its argv."""

    state: Path
    shards: int = 2
    replication: int = 1
    host: str = "127.0.0.1"
    ports: VMPorts = field(default_factory=VMPorts)
    retention: str = "12"  # months, or with a unit suffix (h, d, w, y)
    sd_interval: str = "10s"  # how often vmagent re-reads file SD and asks HTTP SD
    shard_ports: List[int] = field(default_factory=list)  # default: ports.vmagent + i

    def __post_init__(self) -> None:
        if self.shards < 0 or (self.shards and not 1 <= self.replication <= self.shards):
            raise ValueError("need shards >= 0 and 1 <= replication <= shards (got %d, %d)"
                             % (self.shards, self.replication))

    @property
    def url(self) -> str:
        """VictoriaMetrics: the Prometheus query API for Grafana and the soak report."""
        return "http://%s:%d" % (self.host, self.ports.victoriametrics)

    @property
    def write_url(self) -> str:
        return self.url + "/api/v1/write"

    def shard_port(self, i: int) -> int:
        return self.shard_ports[i] if self.shard_ports else self.ports.vmagent + i

    def shard_url(self, i: int) -> str:
        return "http://%s:%d" % (self.host, self.shard_port(i))

    @property
    def vmalert_url(self) -> str:
        return "http://%s:%d" % (self.host, self.ports.vmalert)

    def victoria_metrics(self, binary: str, scrape_interval: str,
                         extra: Sequence[str] = ()) -> List[str]:
        """The single-node server; replicated samples collapse to one per scrape interval,
        and a sample is visible to queries one scrape interval after it was taken (the
        default, 30s, would show a soak's dashboards half a minute late)."""
        return [binary, "-storageDataPath=%s" % (self.state / "victoria-metrics"),
                "-httpListenAddr=%s:%d" % (self.host, self.ports.victoriametrics),
                "-retentionPeriod=%s" % self.retention,
                "-dedup.minScrapeInterval=%s" % scrape_interval,
                "-search.latencyOffset=%s" % scrape_interval, *extra]

    def vmagent(self, binary: str, i: int, config: Path) -> List[str]:
        """Shard ``i`` of ``shards``: scrapes its share of ``config``'s targets."""
        return [binary, "-promscrape.config=%s" % config,
                "-remoteWrite.url=%s" % self.write_url,
                "-remoteWrite.tmpDataPath=%s" % (self.state / ("vmagent-%d" % i)),
                "-httpListenAddr=%s:%d" % (self.host, self.shard_port(i)),
                "-promscrape.cluster.membersCount=%d" % self.shards,
                "-promscrape.cluster.memberNum=%d" % i,
                "-promscrape.cluster.replicationFactor=%d" % self.replication,
                "-promscrape.fileSDCheckInterval=%s" % self.sd_interval,
                "-promscrape.httpSDCheckInterval=%s" % self.sd_interval]

    def vmalert(self, binary: str, rules: Sequence[Path], alertmanager: str,
                evaluation_interval: str) -> List[str]:
        """Rules evaluated against VictoriaMetrics; results and alert state written back."""
        return [binary, *("-rule=%s" % r for r in rules),
                "-datasource.url=%s" % self.url, "-remoteWrite.url=%s" % self.url,
                "-remoteRead.url=%s" % self.url, "-notifier.url=%s" % alertmanager,
                "-evaluationInterval=%s" % evaluation_interval,
                "-external.url=%s" % self.vmalert_url,
                "-httpListenAddr=%s:%d" % (self.host, self.ports.vmalert)]


def vmagent_config(prometheus: Dict[str, Any]) -> Dict[str, Any]:
    """The scrape part of a Prometheus config (global + scrape_configs), as vmagent reads it."""
    cfg = {k: prometheus[k] for k in VMAGENT_KEYS if k in prometheus}
    if "global" in cfg:
        cfg["global"] = {k: v for k, v in cfg["global"].items() if k in VMAGENT_GLOBAL}
    # vmagent 1.79 takes SD refresh intervals from flags (Topology.sd_interval) only.
    cfg["scrape_configs"] = [
        {k: [{f: v for f, v in sd.items() if f != "refresh_interval"} for sd in val]
         if k.endswith("_sd_configs") else val for k, val in job.items()}
        for job in cfg.get("scrape_configs", [])]
    return cfg


def with_remote_write(prometheus: Dict[str, Any], url: str) -> Dict[str, Any]:
    """A copy of a Prometheus config that also sends every sample to ``url``."""
    cfg = dict(prometheus)
    cfg["remote_write"] = [*cfg.get("remote_write", []), {"url": url}]
    return cfg


def vmalert_rules(rule_files: Sequence[Path], out: Path) -> List[Path]:
    """The rule files as vmalert 1.79 accepts them (``keep_firing_for`` removed), in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for src in rule_files:
        text = _KEEP_FIRING.sub("", Path(src).read_text())
        dst = out / Path(src).name
        dst.write_text("# Generated for vmalert from %s (keep_firing_for removed)\n%s"
                       % (src, text))
        written.append(dst)
    return written
