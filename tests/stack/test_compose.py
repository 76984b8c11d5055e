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


# --- Grafana provisioning, rendered the way Grafana reads it ------------------------------
# pkg/services/provisioning/values: every string is split on "$$" (a literal "$"),
# "$__env{NAME}" is expanded, then Go's os.ExpandEnv: "$NAME" or "${NAME}", where NAME
# inside braces is everything up to "}" (so "${VAR:-default}" reads a variable literally
# named "VAR:-default"); a "$" not followed by a name stays as it is.
_GO_SPECIAL = set("*#$@!?-0123456789")


def _go_shell_name(s: str) -> tuple[str, int]:
    """Go's ``getShellName``: the variable name after a ``$`` and the characters used."""
    if s[0] == "{":
        if len(s) > 2 and s[1] in _GO_SPECIAL and s[2] == "}":
            return s[1], 3
        end = s.find("}", 1)
        if end == 1:
            return "", 2  # "${}": bad syntax, eaten
        return (s[1:end], end + 1) if end > 0 else ("", 1)  # unterminated "${": eaten
    if s[0] in _GO_SPECIAL:
        return s[0], 1
    n = 0
    while n < len(s) and s[n].isascii() and (s[n].isalnum() or s[n] == "_"):
        n += 1
    return s[:n], n


def go_expand_env(text: str, env: dict) -> str:
    """Go's ``os.Expand(text, env.get)`` (os/env.go), character for character."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            name, width = _go_shell_name(text[i + 1:])
            if name:
                out.append(env.get(name, ""))
            elif width == 0:
                out.append("$")  # "$" not followed by a name stays
            i += 1 + width
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def grafana_interpolate(value: str, env: dict) -> str:
    parts = value.split("$$")
    expanded = [go_expand_env(re.sub(r"\$__env\{([^}]*)\}", lambda m: env.get(m.group(1), ""),
                                     p), env) for p in parts]
    return "$".join(expanded)


def _strings(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, "%s.%s" % (path, k) if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, "%s[%d]" % (path, i))
    elif isinstance(node, str):
        yield path, node


def test_go_expand_env_follows_grafana_rules() -> None:
    env = {"A": "x", "URL": "http://p:9090"}
    assert grafana_interpolate("$A/${URL}/$$A/$/q", env) == "x/http://p:9090/$A/$/q"
    assert grafana_interpolate("${URL:-http://d}", env) == ""  # no shell defaults
    assert grafana_interpolate("$__env{URL}", env) == "http://p:9090"
    assert grafana_interpolate("${MISSING}", env) == ""


def test_grafana_provisioning_renders_without_empty_values(config: dict) -> None:
    """Every provisioning value, expanded with the grafana service's environment, is set."""
    env = {k: str(v) for k, v in config["services"]["grafana"]["environment"].items()}
    files = sorted((REPO / "grafana" / "provisioning").rglob("*.y*ml"))
    assert len(files) >= 2
    used = set()
    for path in files:
        for where, raw in _strings(yaml.safe_load(path.read_text())):
            used.update(re.findall(r"\$\{?(\w+)", raw))
            value = grafana_interpolate(raw, env)
            assert value.strip(), "%s: %s = %r renders empty in Grafana" % (
                path.relative_to(REPO), where, raw)
            assert "$" not in value, "%s: %s = %r keeps a '$'" % (path, where, value)
    assert {"PROMETHEUS_URL", "ALERTMANAGER_URL", "DASHBOARDS_PATH"} <= used
    datasources = yaml.safe_load((REPO / "grafana/provisioning/datasources/boardfleet.yml")
                                 .read_text())["datasources"]
    urls = {d["uid"]: grafana_interpolate(d["url"], env) for d in datasources}
    assert urls == {"boardfleet-prometheus": "http://127.0.0.1:9090",
                    "boardfleet-alertmanager": "http://127.0.0.1:9093"}
    provider = yaml.safe_load((REPO / "grafana/provisioning/dashboards/boardfleet.yml")
                              .read_text())["providers"][0]
    assert _mounts(config["services"]["grafana"])[
        grafana_interpolate(provider["options"]["path"], env)] == str(REPO / "grafana/dashboards")


def test_prometheus_sees_the_targets_agent_install_writes(config: dict) -> None:
    """Nothing is mounted over /etc/prometheus/targets; demo targets land beside boards.json."""
    services = config["services"]
    prom = _mounts(services["prometheus"])
    assert prom["/etc/prometheus"] == str(REPO / "prometheus")
    assert not [t for t in prom if t.startswith("/etc/prometheus/")], prom
    demo = services["demo-boards"]
    targets = next(a.split("=", 1)[1] for a in demo["command"] if a.startswith("--targets="))
    mount = _mounts(demo)[targets.rsplit("/", 1)[0]]
    assert mount == str(REPO / "prometheus" / "targets")
    cfg = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "boardfleet-agent")
    globs = [f for sd in job["file_sd_configs"] for f in sd["files"]]
    assert "targets/*.yml" in globs and "targets/*.json" in globs


def test_healthchecks_and_start_order(config: dict) -> None:
    services = config["services"]
    for name in ("prometheus", "alertmanager", "grafana", "fleet"):
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and any(":%s/" % p in " ".join(test)
                                        for p in ("9090", "9093", "3000", "9120")), test
    assert services["prometheus"]["depends_on"]["fleet"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    comment = COMPOSE.read_text()
    assert "/sd/agent" not in comment and "/sd?mode=agent" in comment
