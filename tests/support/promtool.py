"""Running Debian's ``promtool``."""

import shutil
import subprocess
from typing import List


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise RuntimeError("promtool not found: install Debian's 'prometheus' package "
                           "(scripts/test does)")
    return path


def check_metrics(exposition: str) -> List[str]:
    """Lint exposition text; return promtool's complaints (empty when clean)."""
    r = subprocess.run([promtool(), "check", "metrics"], input=exposition,
                       capture_output=True, text=True, timeout=60)
    return [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
