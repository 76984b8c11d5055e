"""The Python 3.8 interpreter the agent's 3.8 tests run on, as scripts/find-python38 finds it."""

import functools
import subprocess

from support.paths import REPO


@functools.cache
def find() -> str | None:
    """Path of a working Python 3.8, or None when the machine has none."""
    r = subprocess.run([str(REPO / "scripts" / "find-python38")], capture_output=True,
                       text=True, timeout=60)
    return (r.stdout.strip() or None) if r.returncode == 0 else None
