"""BoardDown covers agentless boards: a probe that fails (``board_probe_success 0``
while the fleet service answers, ``up 1``) pages with ``cause="probe_failed"``.

Real fleet service, fake boards over sshd/telnet (the ``fleet`` fixture), Debian's
Prometheus with the generated rules (``for:`` shortened to 3s)."""

import urllib.parse
from pathlib import Path

import pytest
from agentless_helpers import agentless_job, wait_for
from support.paths import REPO
from support.prom import start_prometheus

from boardfleet.rules import load_thresholds, shortened, write

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def test_failing_probe_raises_board_down(fleet, tmp_path: Path) -> None:
    rules = write(shortened(load_thresholds(REPO / "prometheus" / "thresholds.yml"), "3s",
                            scale=120), tmp_path / "rules")
    service = urllib.parse.urlsplit(fleet["base"]).netloc
    # A 3 s scrape timeout gives each probe 2.5 s: a good board's probe must not fail on
    # a loaded machine (a failure also puts the board in connection backoff).
    config = {"global": {"scrape_interval": "3s", "scrape_timeout": "3s",
                         "evaluation_interval": "1s"},
              "scrape_configs": [agentless_job(service)]}
    with start_prometheus(config, rule_files=list(rules.values())) as prom:
        down = wait_for(lambda: prom.query('ALERTS{alertname="BoardDown", board="tel1", '
                                           'alertstate="firing"}'), 45,
                        "BoardDown for tel1, whose telnet login fails")
        alive = prom.query('up{job="boardfleet-agentless", board="tel1"}')
        good = prom.query('ALERTS{alertname="BoardDown", board=~"hi0|gen0|tel0"}')
    labels = down[0]["metric"]
    assert (labels["cause"], labels["instance"], labels["job"]) == (
        "probe_failed", "tel1", "boardfleet-agentless")
    assert [s["value"][1] for s in alive] == ["1"], "the service itself answered"
    assert good == [], "boards whose probes work raised BoardDown"
