"""``boardfleet_soak_active{soak,board}``: 1 for each board of each active run.

A collector reading the store at scrape time, so runs started by the CLI show up on
the service's ``/metrics`` without a restart; registered on the default registry.
"""

from typing import Iterator

from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from boardfleet.soak.store import SoakError, SoakStore


class SoakCollector(Collector):
    def __init__(self, store: SoakStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        active = GaugeMetricFamily("boardfleet_soak_active",
                                   "1 while the board is in the running soak run",
                                   labels=["soak", "board"])
        ok = GaugeMetricFamily("boardfleet_soak_store_up",
                               "1 if the soak store could be read at this scrape")
        try:
            runs = self.store.active()
            ok.add_metric([], 1)
        except SoakError:
            runs = []
            ok.add_metric([], 0)
        for run in runs:
            for board in run.boards:
                active.add_metric([run.name, board], 1)
        yield active
        yield ok


_registered: dict = {}


def register(store: SoakStore) -> SoakCollector:
    """Register (once per store path) on the default REGISTRY; idempotent."""
    c = _registered.get("collector")
    if c is None:
        c = SoakCollector(store)
        REGISTRY.register(c)
        _registered["collector"] = c
    c.store = store
    return c
