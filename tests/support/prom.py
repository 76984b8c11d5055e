"""Real Prometheus and Alertmanager (Debian packages) on free loopback ports.

Both run from a temporary directory (config, data) and are stopped when the ``with``
block ends, even on failure::

    with start_prometheus(config_text, rule_files=[...]) as prom:
        prom.query("up")
"""

import json
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Union

import yaml

from support.net import free_port, wait_http
from support.process import terminate

PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
Config = Union[str, Path, Dict[str, Any]]


class Server:
    """A started server: ``url``, its temp ``dir``, and the process."""

    def __init__(self, url: str, directory: Path, proc: subprocess.Popen) -> None:
        self.url = url
        self.dir = directory
        self.proc = proc

    def get(self, path: str, **params: str) -> Any:
        """GET ``path`` and return the decoded JSON body."""
        query = "?" + urllib.parse.urlencode(params) if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=10) as r:
            return json.loads(r.read().decode())

    def log(self) -> str:
        return (self.dir / "log.txt").read_text(errors="replace")


class Prometheus(Server):
    def query(self, expr: str, time: float | None = None) -> List[Dict[str, Any]]:
        """Instant query; the ``result`` list of the API answer."""
        params = {"query": expr}
        if time is not None:
            params["time"] = "%.3f" % time
        body = self.get("/api/v1/query", **params)
        if body.get("status") != "success":
            raise RuntimeError("query %r failed: %s" % (expr, body))
        return body["data"]["result"]

    def alerts(self) -> List[Dict[str, Any]]:
        """Active (pending and firing) alerts."""
        return self.get("/api/v1/alerts")["data"]["alerts"]


def _load(config: Config) -> Dict[str, Any]:
    if isinstance(config, dict):
        return dict(config)
    text = Path(config).read_text() if isinstance(config, Path) else config
    return yaml.safe_load(text) or {}


@contextmanager
def start_prometheus(config: Config, rule_files: Sequence[Union[str, Path]] | None = None,
                     args: Sequence[str] = ()) -> Iterator[Prometheus]:
    """Run Prometheus with ``config`` (YAML text, a Path, or a dict).

    ``rule_files`` (absolute or relative to the caller's cwd) replace the config's own.
    Relative paths left in the config (file SD) resolve against the temp directory,
    where the config is written.
    """
    cfg = _load(config)
    if rule_files is not None:
        cfg["rule_files"] = [str(Path(p).resolve()) for p in rule_files]
    with _temp_dir("prometheus") as d:
        (d / "prometheus.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        port = free_port()
        cmd = [PROMETHEUS, "--config.file", str(d / "prometheus.yml"),
               "--storage.tsdb.path", str(d / "data"),
               "--web.listen-address", "127.0.0.1:%d" % port, *args]
        with _running(cmd, d, "http://127.0.0.1:%d" % port) as proc:
            yield Prometheus("http://127.0.0.1:%d" % port, d, proc)


@contextmanager
def start_alertmanager(config: Config, args: Sequence[str] = ()) -> Iterator[Server]:
    """Run Alertmanager with ``config`` (YAML text, a Path, or a dict), clustering off."""
    with _temp_dir("alertmanager") as d:
        (d / "alertmanager.yml").write_text(yaml.safe_dump(_load(config), sort_keys=False))
        port = free_port()
        cmd = [ALERTMANAGER, "--config.file", str(d / "alertmanager.yml"),
               "--storage.path", str(d / "data"),
               "--web.listen-address", "127.0.0.1:%d" % port,
               "--cluster.listen-address=", *args]
        with _running(cmd, d, "http://127.0.0.1:%d" % port) as proc:
            yield Server("http://127.0.0.1:%d" % port, d, proc)


@contextmanager
def _temp_dir(prefix: str) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="boardfleet-%s-" % prefix))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextmanager
def _running(cmd: List[str], d: Path, url: str) -> Iterator[subprocess.Popen]:
    with open(d / "log.txt", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        try:
            wait_http(url + "/-/ready", timeout=30)
        except TimeoutError as e:
            raise RuntimeError("%s did not start: %s\n%s" % (
                cmd[0], e, (d / "log.txt").read_text(errors="replace")[-2000:])) from None
        yield proc
    finally:
        terminate(proc, 15)
