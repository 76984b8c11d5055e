"""Suite-wide settings."""

from hypothesis import HealthCheck, settings

# Two cores shared by real Prometheus, sshd and agent processes: a slow example is load,
# not a bug, so hypothesis judges inputs only by what the code under test does.
settings.register_profile(
    "boardfleet", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("boardfleet")
