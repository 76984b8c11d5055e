"""Suite-wide settings."""

import os
from typing import List

from hypothesis import HealthCheck, settings
from support import python38

# Two cores shared by real Prometheus, sshd and agent processes: a slow example is load,
# not a bug, so hypothesis judges inputs only by what the code under test does.
settings.register_profile(
    "boardfleet", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("boardfleet")


def pytest_report_header() -> List[str]:
    """Say up front whether the agent's Python 3.8 tests can run here."""
    python = python38.find()
    if python is not None:
        return ["python3.8 for the agent's 3.8 tests: %s" % python]
    return ["python3.8: NONE FOUND - the agent's 3.8 tests %s (scripts/find-python38)"
            % ("FAIL (CI=true)" if os.environ.get("CI") == "true" else "are SKIPPED")]
