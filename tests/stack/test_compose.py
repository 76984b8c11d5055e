"""docker-compose.yml: valid for Debian's docker-compose, pinned, and wired to the repo."""

import re
import shutil
import subprocess

import pytest
import yaml
from support.paths import REPO

COMPOSE = REPO / "docker-compose.yml"
PINNED = re.compile(r"^[\w./-]+:v?\d+\.\d+(\.\d+)?$")


@pytest.fixture(scope="module")
def config() -> dict:
    """The configuration as docker-compose resolves it (no daemon needed)."""
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose not found: install Debian's 'docker-compose' (scripts/test)")
    r = subprocess.run([exe, "-f", str(COMPOSE), "config"], capture_output=True, text=True,
                       timeout=60, cwd=REPO)
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


def _mounts(service: dict) -> dict:
    """Mount target -> source (a host path or a volume name)."""
    out = {}
    for v in service.get("volumes", []):
        source, target = (v["source"], v["target"]) if isinstance(v, dict) \
            else v.split(":")[:2]
        out[target] = source
    return out


def test_services_and_pinned_images(config: dict) -> None:
    services = config["services"]
    default = {name for name, svc in services.items() if not svc.get("profiles")}
    assert default == {"pod", "prometheus", "alertmanager", "grafana", "fleet", "demo-boards"}
    for name, svc in services.items():
        assert PINNED.match(svc["image"]), "%s: image %s is not pinned" % (name, svc["image"])
    assert services["fleet"]["build"]["dockerfile"] == "exporter/Dockerfile"
    assert (REPO / "exporter" / "Dockerfile").is_file()


def test_data_lives_in_volumes(config: dict) -> None:
    mounts = {name: _mounts(svc) for name, svc in config["services"].items()}
    assert "/prometheus" in mounts["prometheus"]
    assert "/alertmanager" in mounts["alertmanager"]
    assert "/var/lib/grafana" in mounts["grafana"]
    assert "/data" in mounts["fleet"]
    assert {"prometheus-data", "alertmanager-data", "grafana-data", "fleet-data"} \
        <= set(config["volumes"])


def test_grafana_is_provisioned_and_viewable(config: dict) -> None:
    grafana = config["services"]["grafana"]
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_SECURITY_ADMIN_PASSWORD"]
    volumes = _mounts(grafana)
    assert volumes["/etc/grafana/provisioning"] == str(REPO / "grafana" / "provisioning")
    assert volumes[env["DASHBOARDS_PATH"]] == str(REPO / "grafana" / "dashboards")
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (REPO / "grafana" / "dashboards" / home.rsplit("/", 1)[1]).is_file()


def test_shared_network_matches_the_repository_configs(config: dict) -> None:
    """Services share one network namespace, so prometheus.yml's 127.0.0.1 addresses hold."""
    services = config["services"]
    for name in set(services) - {"pod"}:
        assert services[name]["network_mode"] == "service:pod", name
    published = {int(p["target"]) for p in services["pod"]["ports"]}
    assert published == {3000, 9090, 9093, 9120}
    prom = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    am = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["127.0.0.1:9093"]
    fleet = services["fleet"]["command"]
    assert fleet[fleet.index("--listen") + 1].endswith(":9120")
