"""Stopping processes a test started, and telling whether one still runs."""

import os
import signal
import subprocess


def terminate(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; always reaps the process."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def alive(pid: int) -> bool:
    """Whether a process with that pid exists (it may be a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
