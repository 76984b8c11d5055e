"""A virtual fleet for load: thousands of boards served by one process, one HTTP port.

Each board's page is the real agent's ``--once`` output for a fixture sysroot of its
platform (HiSilicon, Horizon, Snapdragon: 90 to 170 series each, as a real board
serves), at ``/boards/<name>/metrics``. Counters advance by one per second so
``rate()`` panels have data; gauges keep the fixture's values. The file SD target
groups carry ``__metrics_path__``, so Prometheus and vmagent see one target per board.
"""

import contextlib
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from boardfleet_agent.platform import detect
from boardfleet_agent.source import LocalSource

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures"
# Fixture sysroots standing in for each platform's boards (tests/fixtures/<name>).
DEFAULT_SYSROOTS = ("hi3516ev200", "ss928", "x5", "s600", "qcs6490")
PATH = "/boards/%s/metrics"


class VirtualFleetError(RuntimeError):
    """A template could not be captured; the message names the sysroot."""


@dataclass
class Template:
    """One platform's exposition: ``(line prefix, value, is counter)`` per sample line."""

    platform: str
    lines: List[Tuple[str, float, bool]]
    comments: str

    @property
    def series(self) -> int:
        return len(self.lines)

    def render(self, elapsed: float) -> bytes:
        out = [self.comments]
        for prefix, value, counter in self.lines:
            out.append("%s %r\n" % (prefix, value + elapsed if counter else value))
        return "".join(out).encode()


def capture(sysroot: Path) -> Template:
    """Run the real agent once on ``sysroot`` and keep its exposition as a template."""
    r = subprocess.run([sys.executable, "-m", "boardfleet_agent", "--sysroot", str(sysroot),
                        "--once"], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise VirtualFleetError("agent --once on %s failed: %s" % (sysroot, r.stderr[-500:]))
    return parse(detect(LocalSource(str(sysroot))), r.stdout)


def parse(platform: str, text: str) -> Template:
    """Split exposition text into sample lines (counters marked) and comment lines."""
    counters = set()
    comments, lines = [], []
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE" and parts[3] == "counter":
                counters.add(parts[2])
            comments.append(line + "\n")
            continue
        prefix, _, value = line.rpartition(" ")
        try:
            number = float(value)
        except ValueError:
            continue
        name = prefix.split("{")[0]
        base = name.removesuffix("_total").removesuffix("_created")
        lines.append((prefix, number, name in counters or (base in counters
                      and not name.endswith("_created"))))
    return Template(platform, lines, "".join(comments))


class VirtualFleet:
    """``boards`` boards named ``vf-<n>-<sysroot>``, platforms taken round-robin."""

    def __init__(self, boards: int, templates: Dict[str, Template],
                 labels: Dict[str, str] | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        if boards < 1 or not templates:
            raise ValueError("need >= 1 board and >= 1 template")
        kinds = sorted(templates)
        self.boards = {"vf-%05d-%s" % (i + 1, kinds[i % len(kinds)]): templates[
            kinds[i % len(kinds)]] for i in range(boards)}
        self.labels = labels or {"rack": "virtual", "owner": "load"}
        self.start = time.monotonic()
        fleet = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = self.path.split("/")
                t = fleet.boards.get(parts[2]) if len(parts) == 4 else None
                if t is None or parts[3] != "metrics":
                    self.send_error(404, "no such board")
                    return
                body = t.render(round(time.monotonic() - fleet.start))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the scraper gave up (scrape timeout)
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.address = "%s:%d" % (host, self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def series(self) -> int:
        """Sample lines across all boards (the active series a scraper will hold)."""
        return sum(t.series for t in self.boards.values())

    def file_sd(self) -> List[Dict[str, Any]]:
        """One target group per board, with its labels and its page's path."""
        return [{"targets": [self.address], "labels": {
            "board": name, "platform": t.platform, "mode": "agent", **self.labels,
            "__metrics_path__": PATH % name}} for name, t in self.boards.items()]

    def __enter__(self) -> "VirtualFleet":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def templates(fixtures: Path, names: Sequence[str] = DEFAULT_SYSROOTS) -> Dict[str, Template]:
    """A template per fixture sysroot under ``fixtures`` (key: the sysroot's name)."""
    return {name: capture(fixtures / name) for name in names if (fixtures / name).is_dir()}
