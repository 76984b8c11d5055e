"""Grafana annotations marking a soak run's start and stop (HTTP API /api/annotations)."""

import os
import sys
from dataclasses import dataclass
from typing import List, TextIO

import httpx

from boardfleet.soak.store import Run

URL_ENV = "BOARDFLEET_GRAFANA_URL"
TOKEN_ENV = "BOARDFLEET_GRAFANA_TOKEN"


@dataclass
class Grafana:
    url: str
    token: str

    @classmethod
    def from_env(cls, url: str | None = None, token: str | None = None) -> "Grafana | None":
        """Configured by arguments, else ``$BOARDFLEET_GRAFANA_URL`` and ``..._TOKEN``."""
        url = url or os.environ.get(URL_ENV)
        token = token or os.environ.get(TOKEN_ENV)
        return cls(url.rstrip("/"), token) if url and token else None

    def annotate(self, run: Run, event: str, at: float) -> None:
        """POST one annotation (tags ``soak``, ``soak:<name>``, ``board:<name>``...)."""
        tags: List[str] = ["boardfleet", "soak", "soak:" + run.name, event]
        tags += ["board:" + b for b in run.boards[:50]]
        meta = ", ".join("%s=%s" % kv for kv in sorted(run.meta.items()))
        text = "soak %s %s: %d boards (%s)%s" % (
            run.name, event, len(run.boards), run.selector, "; " + meta if meta else "")
        r = httpx.post(self.url + "/api/annotations", timeout=10,
                       headers={"Authorization": "Bearer " + self.token},
                       json={"time": int(at * 1000), "tags": tags, "text": text})
        r.raise_for_status()


def annotate_quietly(grafana: "Grafana | None", run: Run, event: str, at: float,
                     err: TextIO | None = None) -> bool:
    """Annotate if configured; a Grafana that fails only costs a warning."""
    if grafana is None:
        return False
    try:
        grafana.annotate(run, event, at)
        return True
    except httpx.HTTPError as e:
        (err or sys.stderr).write("boardfleet: warning: Grafana annotation for soak %s %s "
                                  "failed (%s): %s\n" % (run.name, event, grafana.url, e))
        return False
