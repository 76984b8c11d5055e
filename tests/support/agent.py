"""Running the real agent: ``--once`` output and a served agent process."""

import os
import ssl
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Tuple

from support.net import free_port, wait_http
from support.process import terminate

# Families whose values depend on the host or the moment, not on the fixture.
VOLATILE_PREFIXES = (
    "process_", "python_", "board_collector_duration_seconds",
    "board_collector_last_success_timestamp_seconds", "board_filesystem_",
)


def agent_cmd(*args: str, python: str = sys.executable) -> List[str]:
    return [python, "-m", "boardfleet_agent", *args]


def run_once(sysroot: str, *args: str) -> str:
    out = subprocess.run(agent_cmd("--sysroot", sysroot, "--once", *args),
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout


def stable_lines(exposition: str) -> str:
    """Exposition text without host- or time-dependent families (for golden diffs)."""
    keep = []
    for line in exposition.splitlines():
        name = line.split()[2] if line.startswith("# ") else line.split("{")[0].split(" ")[0]
        if not name.startswith(VOLATILE_PREFIXES):
            keep.append(line)
    return "\n".join(keep) + "\n"


# The stderr file of each agent served_agent runs, by pid.
_STDERR: Dict[int, str] = {}


@contextmanager
def served_agent(sysroot: str, *args: str, tls_context: ssl.SSLContext | None = None,
                 env: Dict[str, str] | None = None, python: str = sys.executable,
                 ) -> Iterator[Tuple[str, subprocess.Popen]]:
    """Start ``boardfleet-agent --listen 127.0.0.1:<free port>``; yield (base URL, proc).

    Pass ``tls_context`` (trusting the agent's certificate) when args enable TLS,
    ``env`` for variables to add to the agent's environment, and ``python`` to run it
    on another interpreter. The agent's stderr goes to a file, never a pipe nobody
    drains (a chatty agent would block on a full pipe): read it with :func:`agent_stderr`.
    """
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="agent-stderr-") as log:
        proc = subprocess.Popen(
            agent_cmd("--sysroot", sysroot, "--listen", "127.0.0.1:%d" % port, *args,
                      python=python),
            stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **(env or {})})
        _STDERR[proc.pid] = log.name
        base = "%s://127.0.0.1:%d" % ("https" if tls_context else "http", port)
        try:
            wait_http(base + "/-/healthy", context=tls_context)
            yield base, proc
        finally:
            terminate(proc, 10)
            del _STDERR[proc.pid]


def agent_stderr(proc: subprocess.Popen) -> str:
    """What an agent started by :func:`served_agent` has logged so far."""
    with open(_STDERR[proc.pid], "rb") as f:
        return f.read().decode(errors="replace")


def wait_logged(proc: subprocess.Popen, text: str, limit: float = 30.0) -> bool:
    """Whether the agent logs ``text`` within ``limit`` seconds (or already has)."""
    deadline = time.monotonic() + limit
    while text not in agent_stderr(proc):
        if time.monotonic() > deadline or proc.poll() is not None:
            return text in agent_stderr(proc)
        time.sleep(0.05)
    return True
