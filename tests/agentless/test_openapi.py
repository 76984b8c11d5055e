"""schemathesis against the fleet service's OpenAPI spec: no input gives a 500.

Service and schemathesis run in a namespace with only ``lo``: boards that schemathesis
adds (random hosts) and then probes cannot reach anything outside it.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from agentless_helpers import TOKEN, in_netns, loopback_netns, served, write_private

from boardfleet.inventory import Inventory
from boardfleet.probe import Prober
from boardfleet.service.app import ServiceState, create_app
from boardfleet.transports.pool import SessionPool
from boardfleet.transports.secrets import Secrets

pytestmark = pytest.mark.netns


def operations() -> int:
    """How many operations the OpenAPI spec lists."""
    state = ServiceState(Inventory(), Prober(SessionPool({}, Secrets())), None)
    try:
        return sum(len(ops) for ops in create_app(state).openapi()["paths"].values())
    finally:
        state.close()


def test_schemathesis_finds_no_server_errors(workdir: Path):
    d = workdir / "openapi"
    d.mkdir()
    inventory = d / "boards.yml"
    # A board whose address refuses connections: probes of it must fail cleanly too.
    inventory.write_text(yaml.safe_dump({"boards": [
        {"name": "gone0", "host": "127.0.0.1", "port": 9, "mode": "agentless"}]}))
    token = write_private(d / "token", TOKEN)
    venv = Path(sys.executable).with_name("schemathesis")
    cmd = [str(venv) if venv.exists() else shutil.which("schemathesis") or "schemathesis"]
    with loopback_netns() as ns, served(inventory, d, "--token-file", str(token),
                                        "--timeout", "1", netns=ns) as base:
        r = subprocess.run(in_netns(ns, [
            *cmd, "run", base + "/openapi.json", "--checks", "not_a_server_error",
            "--max-examples", "30", "--seed", "1", "--workers", "1", "--no-color",
            "--request-timeout", "10", "-H", "Authorization: Bearer " + TOKEN]),
            capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    # Warnings may remain (POST /soaks rejects most generated selectors: they match no
    # board, a documented 404); failures may not.
    assert "FAILURES" not in r.stdout, r.stdout[-4000:]
    tested = re.search(r"Tested: (\d+)", r.stdout)
    assert tested and int(tested.group(1)) == operations() >= 6
