"""A real agent with its StatsD intake on a free loopback port, and ways to talk to it."""

import socket
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, FrozenSet, Iterator, Tuple

from prometheus_client.parser import text_string_to_metric_families
from support.agent import served_agent
from support.paths import FIXTURES

from boardfleet_agent.inference.statsd import Sample, parse_line, split_datagram

Samples = Dict[Tuple[str, FrozenSet[Tuple[str, str]]], float]
SYSROOT = str(FIXTURES / "generic")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def statsd_agent(tmp_path: Path, config: str = "", sysroot: str = SYSROOT,
                 listen: bool = True) -> Iterator[Tuple[str, Tuple[str, int]]]:
    """Serve an agent whose intake listens on a free UDP port; yield (URL, UDP address).

    With ``listen=False`` the UDP address is left to the config file.
    """
    udp = ("127.0.0.1", free_udp_port())
    args = ["--collector.disable-defaults"]
    if listen:
        args += ["--statsd-listen", "%s:%d" % udp]
    if config:
        path = tmp_path / "agent.toml"
        path.write_text(config)
        args += ["--config", str(path)]
    with served_agent(sysroot, *args) as (base, _proc):
        yield base, udp


def send(addr: Tuple[str, int], *datagrams: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, addr)


def scrape_text(base: str) -> str:
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        return r.read().decode()


def scrape(base: str) -> Samples:
    out: Samples = {}
    for fam in text_string_to_metric_families(scrape_text(base)):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def wait_for(base: str, done: Callable[[Samples], bool], timeout: float = 10.0) -> Samples:
    """Scrape until ``done(samples)``; fail with the last scrape after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Samples | None = None
    while time.monotonic() < deadline:
        last = scrape(base)
        if done(last):
            return last
        time.sleep(0.05)
    raise AssertionError("condition not met within %.0fs; last scrape: %r" % (timeout, last))


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)



def parse_datagram(data: bytes) -> tuple[list[Sample], list[str]]:
    """Accepted samples and reject reasons of a datagram, as the parser alone sees it."""
    lines = split_datagram(data)
    if isinstance(lines, str):
        return [], [lines]
    parsed = [parse_line(line) for line in lines]
    return ([p for p in parsed if isinstance(p, Sample)],
            [p for p in parsed if isinstance(p, str)])
