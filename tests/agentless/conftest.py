"""Fixtures of the agentless tests; their helpers live in ``agentless_helpers``."""

from agentless_helpers import fleet, workdir

__all__ = ["fleet", "workdir"]
