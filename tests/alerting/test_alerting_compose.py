"""Static checks of compose.yaml: loopback-only networking, ports, pinned images, required secrets, mounts.

These parse the file with PyYAML and need no Docker engine.
"""

import re
import tomllib
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from opsseer.stack import Ports

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "compose.yaml"

# Variables that contain secrets. Compose must stop with an error when one is unset, so each use is `${NAME:?message}`.
REQUIRED_VARIABLES = {"POSTGRES_PASSWORD", "OPSSEER_WEBHOOK_TOKEN", "FLOWER_BASIC_AUTH"}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<modifier>[^}]*)\}")

# The service that listens on each port of `opsseer up`, and the services that listen on none.
SERVICE_PORTS = {
    "api": "api",
    "toyprod": "toyprod",
    "prometheus": "prometheus",
    "alertmanager": "alertmanager",
    "flower": "flower",
    "postgres": "postgres",
    "redis": "redis",
    "models": "models",
}
NON_LISTENING_SERVICES = {"migrate", "worker", "beat"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def _listen_addresses(command: list[str]) -> list[tuple[str, str]]:
    """Return (flag, address) for every flag in `command` that sets an address to listen on."""
    found = []
    for index, argument in enumerate(command):
        if argument in ("--host", "--bind"):
            found.append((argument, command[index + 1]))
        elif argument.startswith(("--address=", "--web.listen-address=", "--cluster.listen-address=")):
            flag, _, value = argument.partition("=")
            found.append((flag, value))
        elif argument.startswith("listen_addresses="):
            found.append(("listen_addresses", argument.partition("=")[2]))
    return found


def _listen_port(command: list[str]) -> int:
    """Return the TCP port that `command` sets, from --port, -p, or --web.listen-address."""
    for index, argument in enumerate(command):
        if argument in ("--port", "-p"):
            return int(command[index + 1])
        if argument.startswith(("--port=", "--web.listen-address=")):
            return int(argument.rpartition("=")[2].rpartition(":")[2])
    raise AssertionError(f"no port flag in command {command}")


def test_compose_defines_whole_stack(services):
    assert set(services) == set(SERVICE_PORTS) | NON_LISTENING_SERVICES


def test_every_service_uses_host_network(services):
    for name, service in services.items():
        assert service.get("network_mode") == "host", f"{name} does not use network_mode: host"
        assert "ports" not in service, f"{name} publishes ports; with host networking it must bind 127.0.0.1 itself"


def test_every_listener_binds_loopback(services):
    for name in SERVICE_PORTS:
        addresses = _listen_addresses(services[name]["command"])

        assert addresses, f"{name} sets no listen address, so it would use its default"
        for flag, address in addresses:
            if flag == "--cluster.listen-address":
                assert address == "", f"{name}: {flag} must be empty to turn off the HA gossip listener"
            else:
                assert address.split(":")[0] == "127.0.0.1", f"{name}: {flag}={address} is not loopback"


def test_alertmanager_cluster_listener_disabled(services):
    assert "--cluster.listen-address=" in services["alertmanager"]["command"]


def test_ports_match_opsseer_up_defaults(services):
    defaults = asdict(Ports())

    for name, component in SERVICE_PORTS.items():
        assert _listen_port(services[name]["command"]) == defaults[component], name


def test_postgres_client_port_matches_server(services):
    postgres = services["postgres"]

    assert postgres["environment"]["PGPORT"] == str(Ports().postgres)
    assert f"--port={Ports().postgres}" in postgres["healthcheck"]["test"]


def test_settings_urls_point_at_loopback_ports(services):
    ports = Ports()
    environment = services["api"]["environment"]

    assert environment["OPSSEER_DATABASE_URL"].startswith("postgresql+psycopg://opsseer:")
    assert environment["OPSSEER_DATABASE_URL"].endswith(f"@127.0.0.1:{ports.postgres}/opsseer")
    assert environment["OPSSEER_BROKER_URL"] == f"redis://127.0.0.1:{ports.redis}/0"
    assert environment["OPSSEER_PROMETHEUS_URL"] == f"http://127.0.0.1:{ports.prometheus}"
    assert environment["OPSSEER_PORTAL_URL"] == f"${{OPSSEER_PORTAL_URL:-http://127.0.0.1:{ports.api}}}"


def test_healthcheck_urls_use_loopback(services):
    for name, service in services.items():
        if "healthcheck" not in service:
            continue
        for url in re.findall(r"https?://[^\s'\"]+", " ".join(service["healthcheck"]["test"])):
            assert url.startswith("http://127.0.0.1:"), f"{name} healthcheck calls {url}"


def test_long_running_services_have_healthchecks(services):
    # beat has no endpoint to probe, as the NOTE above beat in compose.yaml explains.
    for name in set(services) - {"migrate", "beat"}:
        assert "test" in services[name].get("healthcheck", {}), f"{name} has no healthcheck"


def test_images_are_pinned(services):
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]

    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: image {image} has no tag"
        assert "/" not in tag, f"{name}: image {image} has no tag"
        assert tag != "latest", f"{name}: image {image} is not pinned to a version"
        assert re.search(r"\d", tag), f"{name}: image {image} is not pinned to a version"
        if "build" in service:
            assert image == f"opsseer:{version}", f"{name}: built image should be tagged with the project version"


def test_required_variables_use_error_interpolation(compose):
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    uses = [match for match in INTERPOLATION.finditer(text) if match["name"] in REQUIRED_VARIABLES]

    assert {match["name"] for match in uses} == REQUIRED_VARIABLES
    for match in uses:
        assert match["modifier"].startswith(":?"), f"{match[0]} has a default or no check; use ${{NAME:?message}}"
        assert match["modifier"][2:].strip(), f"{match[0]} needs a message that tells the user what to set"


def test_secret_like_variables_have_no_literal_value(services):
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if not re.search(r"PASSWORD|TOKEN|SECRET|AUTH", key):
                continue
            match = INTERPOLATION.fullmatch(str(value))
            assert match and match["modifier"].startswith(":?"), f"{name}: {key} must come from ${{NAME:?...}}"


def test_secrets_come_from_required_variables(compose):
    for name, secret in compose["secrets"].items():
        assert "file" not in secret, f"secret {name} must not read a file from the repository"
        assert secret["environment"] in REQUIRED_VARIABLES, name


def test_webhook_token_only_reaches_api_and_alertmanager(services):
    for name, service in services.items():
        environment = service.get("environment") or {}
        has_token = "OPSSEER_WEBHOOK_TOKEN" in environment or bool(service.get("secrets"))
        assert has_token == (name in {"api", "alertmanager"}), name


def test_alertmanager_secret_target_matches_credentials_file(services):
    config = yaml.safe_load((REPO_ROOT / "alerting" / "alertmanager.yml").read_text(encoding="utf-8"))
    credentials_file = config["receivers"][0]["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"]

    (secret,) = services["alertmanager"]["secrets"]
    assert secret["target"] == credentials_file
    assert secret["uid"] == "65534"


@pytest.mark.parametrize("name", ["prometheus", "alertmanager"])
def test_mounted_configs_exist_and_are_read_only(services, name):
    bind_mounts = [volume for volume in services[name]["volumes"] if volume.startswith("./")]

    assert bind_mounts, f"{name} mounts nothing from the repository"
    for volume in bind_mounts:
        source, target, mode = volume.split(":")
        assert (REPO_ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
        assert mode == "ro", f"{name} mounts {source} writable"


def test_prometheus_mounts_its_config_rule_files(services):
    prometheus = services["prometheus"]
    config = yaml.safe_load((REPO_ROOT / "alerting" / "prometheus.yml").read_text(encoding="utf-8"))
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in prometheus["volumes"]}
    (config_flag,) = [argument for argument in prometheus["command"] if argument.startswith("--config.file=")]
    config_path = Path(config_flag.partition("=")[2])

    assert mounts[str(config_path)] == "./alerting/prometheus.yml"
    for rule_file in config["rule_files"]:
        # Prometheus resolves rule_files against the config file's directory.
        directory = Path(rule_file).parent
        assert mounts[str(config_path.parent / directory)] == f"./alerting/{directory}"
        assert (REPO_ROOT / "alerting" / rule_file).is_file()


def test_migrate_runs_before_database_users(services):
    assert services["migrate"]["command"] == ["opsseer", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_depends_on_names_existing_services(services):
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"


def test_named_volumes_are_declared(compose, services):
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(("./", "/")):
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"
