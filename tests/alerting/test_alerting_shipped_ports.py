"""The shipped Prometheus and Alertmanager configs use the same loopback ports as `opsseer up` and compose.yaml."""

from pathlib import Path

import yaml

from alerting import render
from functions.triggers import WEBHOOK_PATH
from opsseer.stack import Ports


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_shipped_scrape_targets_use_default_ports():
    ports = Ports()
    config = _load(render.SHIPPED_PROMETHEUS_CONFIG)

    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {
        "toyprod": [f"127.0.0.1:{ports.toyprod}"],
        "opsseer-api": [f"127.0.0.1:{ports.api}"],
        "flower": [f"127.0.0.1:{ports.flower}"],
        "prometheus": [f"127.0.0.1:{ports.prometheus}"],
        "alertmanager": [f"127.0.0.1:{ports.alertmanager}"],
        "opsseer-models": [f"127.0.0.1:{ports.models}"],
    }
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        f"127.0.0.1:{ports.alertmanager}"
    ]


def test_shipped_webhook_url_uses_default_api_port():
    config = _load(render.SHIPPED_ALERTMANAGER_CONFIG)

    webhook = config["receivers"][0]["webhook_configs"][0]
    assert webhook["url"] == f"http://127.0.0.1:{Ports().api}{WEBHOOK_PATH}"
    assert webhook["http_config"]["authorization"]["credentials_file"] == "/etc/opsseer/alertmanager-webhook-token"
