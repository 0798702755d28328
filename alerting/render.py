"""Write the Prometheus and Alertmanager configuration of one run, with its ports and profile.

The shipped files next to this module (`prometheus.yml`, `alertmanager.yml`, `rules/*.yml`) are the
production profile with the default ports. The functions here load them, change only what the run
or profile needs, and write the result into a state directory.

Profiles:

- `production`: the shipped files as they are (15 s scrape and evaluation, latency alert on the 5m
  p95 with `for: 2m`, Alertmanager timings 30s / 5m / 4h).
- `demo`: 1 s scrape and evaluation, the latency alert reads the 30s p95 with `for: 10s`, and
  Alertmanager uses `group_wait: 1s`, `group_interval: 5s`, `repeat_interval: 1h`. In two runs of
  tests/alerting/test_alerting_live_pipeline.py (Prometheus 2.42, Alertmanager 0.25, 400 ms of
  injected latency, 20 requests/s), the p95 crossed 0.25 s 1-2 s after the fault and the firing
  webhook arrived 12-14 s after it. The resolved webhook arrived 30 s after the fault was cleared,
  most of that the length of the 30s window.
"""

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

logger = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent
SHIPPED_PROMETHEUS_CONFIG = SHIPPED_DIR / "prometheus.yml"
SHIPPED_ALERTMANAGER_CONFIG = SHIPPED_DIR / "alertmanager.yml"

LATENCY_ALERT = "ToyprodLatencySLOBreach"
LATENCY_SLI_5M = "sli:toyprod_request_latency_seconds:p95_rate5m"
LATENCY_SLI_30S = "sli:toyprod_request_latency_seconds:p95_rate30s"

# Scrape jobs of the shipped prometheus.yml, by the keyword argument that sets their port.
JOB_NAMES = {
    "toyprod_port": "toyprod",
    "api_port": "opsseer-api",
    "flower_port": "flower",
    "prometheus_port": "prometheus",
    "alertmanager_port": "alertmanager",
    "models_port": "opsseer-models",
}


@dataclass(frozen=True)
class Profile:
    """Changes a profile makes to the shipped configuration. A field left as None keeps the shipped value."""

    name: str
    scrape_interval: str | None = None
    evaluation_interval: str | None = None
    latency_alert_for: str | None = None
    latency_alert_sli: str | None = None
    alertmanager_route_timings: dict[str, str] = field(default_factory=dict)


PROFILES = {
    "production": Profile(name="production"),
    "demo": Profile(
        name="demo",
        scrape_interval="1s",
        evaluation_interval="1s",
        latency_alert_for="10s",
        latency_alert_sli=LATENCY_SLI_30S,
        alertmanager_route_timings={"group_wait": "1s", "group_interval": "5s", "repeat_interval": "1h"},
    ),
}


def get_profile(name: str) -> Profile:
    """Return the profile called `name`, or raise ValueError listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown alerting profile {name!r}; use one of: {known}") from None


class _ConfigDumper(yaml.SafeDumper):
    """A YAML dumper that writes multi-line strings (PromQL expressions) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ConfigDumper.add_representer(str, _represent_str)


def _load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as file:
        return yaml.safe_load(file)


def _write_yaml(path: Path, document: dict[str, Any]) -> None:
    """Write `document` to `path` through a temporary file and a rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A wide line limit keeps PyYAML from folding annotation templates across lines.
    text = yaml.dump(document, Dumper=_ConfigDumper, sort_keys=False, allow_unicode=True, width=4096)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    # NamedTemporaryFile creates mode 0600; Prometheus or Alertmanager may run as another user.
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)


def _with_port(target: str, port: int) -> str:
    host, _, _ = target.rpartition(":")
    return f"{host}:{port}"


def _check_port(name: str, port: int) -> None:
    if not (1 <= port <= 65535):
        raise ValueError(f"{name} must be a TCP port between 1 and 65535, got {port}")


def _apply_rule_profile(rule_file: dict[str, Any], profile: Profile, path: Path) -> bool:
    """Point the latency alert of a rule file at the profile's SLI and `for` duration, in place.

    Returns whether the file contains the latency alert.
    """
    found = False
    for group in rule_file.get("groups", []):
        for rule in group.get("rules", []):
            if rule.get("alert") != LATENCY_ALERT:
                continue
            found = True

            if profile.latency_alert_sli is not None:
                if LATENCY_SLI_5M not in rule["expr"]:
                    raise ValueError(
                        f"{path}: alert {LATENCY_ALERT} no longer reads {LATENCY_SLI_5M}; "
                        f"update the {profile.name} profile in {__name__} to match"
                    )
                rule["expr"] = rule["expr"].replace(LATENCY_SLI_5M, profile.latency_alert_sli)
            if profile.latency_alert_for is not None:
                rule["for"] = profile.latency_alert_for
    return found


def write_prometheus_config(
    out_dir: Path,
    *,
    profile: str,
    prometheus_port: int,
    alertmanager_port: int,
    toyprod_port: int,
    api_port: int,
    flower_port: int,
    models_port: int = 13000,
    extra_targets: dict[str, str] | None = None,
) -> Path:
    """Write prometheus.yml and its rule files for `profile` into `out_dir` and return the prometheus.yml path.

    `extra_targets` maps a new scrape job name to one `host:port` target, for example a model service.
    A name that is already a shipped job raises ValueError.
    """
    selected = get_profile(profile)
    ports = {
        "prometheus_port": prometheus_port,
        "alertmanager_port": alertmanager_port,
        "toyprod_port": toyprod_port,
        "api_port": api_port,
        "flower_port": flower_port,
        "models_port": models_port,
    }
    for name, port in ports.items():
        _check_port(name, port)
    config = _load_yaml(SHIPPED_PROMETHEUS_CONFIG)

    # Global timings.
    if selected.scrape_interval is not None:
        config["global"]["scrape_interval"] = selected.scrape_interval
    if selected.evaluation_interval is not None:
        config["global"]["evaluation_interval"] = selected.evaluation_interval

    # Alertmanager and scrape targets: keep each shipped host, change the port.
    for alertmanager in config["alerting"]["alertmanagers"]:
        for static in alertmanager["static_configs"]:
            static["targets"] = [_with_port(target, alertmanager_port) for target in static["targets"]]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for argument, job_name in JOB_NAMES.items():
        for static in jobs[job_name]["static_configs"]:
            static["targets"] = [_with_port(target, ports[argument]) for target in static["targets"]]

    for job_name, target in (extra_targets or {}).items():
        if job_name in jobs:
            raise ValueError(f"extra target job {job_name!r} is already a shipped scrape job; choose another name")
        config["scrape_configs"].append({"job_name": job_name, "static_configs": [{"targets": [target]}]})

    # Rule files keep their relative paths, which Prometheus resolves against the config file's directory.
    out_dir = Path(out_dir)
    latency_alert_found = False
    for relative in config["rule_files"]:
        rule_file = _load_yaml(SHIPPED_DIR / relative)
        latency_alert_found |= _apply_rule_profile(rule_file, selected, SHIPPED_DIR / relative)
        _write_yaml(out_dir / relative, rule_file)
    if not latency_alert_found:
        raise ValueError(f"no shipped rule file under {SHIPPED_DIR} defines alert {LATENCY_ALERT}")

    config_path = out_dir / "prometheus.yml"
    _write_yaml(config_path, config)
    logger.info("wrote Prometheus config for profile %s to %s", selected.name, config_path)
    return config_path


def write_alertmanager_config(out_dir: Path, *, profile: str, webhook_url: str, token_file: Path) -> Path:
    """Write alertmanager.yml for `profile` into `out_dir`, posting to `webhook_url`, and return its path.

    `token_file` contains the bearer token for the webhook. Its path is written as an absolute path. The
    file itself is read by Alertmanager when it sends, so it may be created after this call.
    """
    selected = get_profile(profile)
    parts = urlsplit(webhook_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"webhook_url must be an http:// or https:// URL, got {webhook_url!r}")
    config = _load_yaml(SHIPPED_ALERTMANAGER_CONFIG)

    config["route"].update(selected.alertmanager_route_timings)
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = webhook_url
            webhook["http_config"]["authorization"]["credentials_file"] = str(Path(token_file).resolve())

    config_path = Path(out_dir) / "alertmanager.yml"
    _write_yaml(config_path, config)
    logger.info("wrote Alertmanager config for profile %s to %s", selected.name, config_path)
    return config_path
