"""The local OpsSeer stack: every component as a process bound to 127.0.0.1, with its state in one directory.

Layout of the state directory:
    logs/<component>.log     each component's output
    postgres/                PostgreSQL data (a symlink when the directory is not reachable by the postgres user)
    redis/                   Redis append-only file
    prometheus/, alertmanager/  their configs and storage
    secrets/                 generated webhook token and database password (mode 600)
"""

import logging
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import click
import httpx
import psycopg
import redis
from rich.console import Console
from rich.table import Table

from alerting.render import write_alertmanager_config, write_prometheus_config
from functions.migrations import upgrade
from functions.triggers import WEBHOOK_PATH
from opsseer.bento import GATEWAY, bento_component
from opsseer.postgres import FAST_UNSAFE_OPTIONS, create_database, init_cluster, postgres_component, purge_state
from opsseer.supervisor import Component, ComponentFailed, Supervisor

logger = logging.getLogger(__name__)

PROFILES = ("production", "demo")
# Settings the demo profile changes so that a whole incident fits in a few minutes.
PROFILE_ENV = {
    "production": {},
    # The demo's Prometheus scrapes every second, so the forecaster gets a 1 s step and a 64 s horizon.
    "demo": {
        "OPSSEER_SNAPSHOT_LOOKBACK_SECONDS": "300",
        "OPSSEER_PIPELINE_SWEEP_INTERVAL_SECONDS": "10",
        "OPSSEER_FORECAST_LOOKBACK_SECONDS": "300",
        "OPSSEER_FORECAST_STEP_SECONDS": "1",
        "OPSSEER_FORECAST_HORIZON_STEPS": "64",
    },
}
# Prometheus re-sends a firing alert to Alertmanager at most once per --rules.alert.resend-delay (1m by default
# in Prometheus 2.42). The demo shortens it, so an alert that fired while Alertmanager was still starting is
# delivered within seconds (the end-to-end test depends on it).
PROMETHEUS_PROFILE_FLAGS = {"production": [], "demo": ["--rules.alert.resend-delay=2s"]}
ALERTMANAGER_BIN = "prometheus-alertmanager"
PROMETHEUS_BIN = "prometheus"
REDIS_BIN = "redis-server"


@dataclass(frozen=True)
class Ports:
    """Loopback ports. The defaults are each component's usual port plus 10000, so the stack can run beside
    system services (Debian's prometheus and postgresql packages start on the usual ports)."""

    api: int = 18080
    toyprod: int = 18081
    prometheus: int = 19090
    alertmanager: int = 19093
    flower: int = 15555
    postgres: int = 15432
    redis: int = 16379
    models: int = 13000

    @classmethod
    def free(cls) -> "Ports":
        """Pick a free loopback port for every component."""
        return cls(**{item.name: free_port() for item in fields(cls)})


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_ok(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(value)


def _read_or_create_secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    _write_secret(path, value)
    return value


class Stack:
    """Start and stop the components; the same code serves `opsseer up`, `opsseer demo` and the tests."""

    def __init__(
        self,
        state_dir: Path,
        *,
        profile: str = "production",
        ports: Ports | None = None,
        echo: bool = True,
        fast_unsafe_postgres: bool = False,
        console: Console | None = None,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
        self.state_dir = state_dir.resolve()
        self.profile = profile
        self.ports = ports or Ports()
        self.fast_unsafe_postgres = fast_unsafe_postgres
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.supervisor = Supervisor(self.state_dir / "logs", echo=echo, console=console)
        self.token_file = self.state_dir / "secrets" / "webhook_token"
        self.webhook_token = os.environ.get("OPSSEER_WEBHOOK_TOKEN") or _read_or_create_secret(self.token_file)
        # Alertmanager reads the token from this file, so it must hold the token in use.
        _write_secret(self.token_file, self.webhook_token)
        self.cluster = None
        # Set by start_models, or by a caller that serves the gateway itself; the workers call it.
        self.models_url: str | None = None

    # URLs and settings

    @property
    def urls(self) -> dict[str, str]:
        return {
            "portal": f"http://127.0.0.1:{self.ports.api}/incidents",
            "trigger": f"http://127.0.0.1:{self.ports.api}{WEBHOOK_PATH}",
            "toyprod": f"http://127.0.0.1:{self.ports.toyprod}",
            "prometheus": f"http://127.0.0.1:{self.ports.prometheus}",
            "alertmanager": f"http://127.0.0.1:{self.ports.alertmanager}",
            "flower": f"http://127.0.0.1:{self.ports.flower}",
            "postgres": f"postgresql://127.0.0.1:{self.ports.postgres}/opsseer",
            "redis": f"redis://127.0.0.1:{self.ports.redis}/0",
            "models": f"http://127.0.0.1:{self.ports.models}",
        }

    @property
    def database_url(self) -> str:
        return self.cluster.url

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports.redis}/0"

    def settings_env(self) -> dict[str, str]:
        """Return the OPSSEER_* variables the trigger and the workers run with."""
        return {
            "OPSSEER_DATABASE_URL": self.database_url,
            "OPSSEER_BROKER_URL": self.broker_url,
            "OPSSEER_WEBHOOK_TOKEN": self.webhook_token,
            "OPSSEER_PROMETHEUS_URL": self.urls["prometheus"],
            "OPSSEER_PORTAL_URL": f"http://127.0.0.1:{self.ports.api}",
            **({"OPSSEER_MODELS_URL": self.models_url} if self.models_url else {}),
            **PROFILE_ENV[self.profile],
        }

    # Components

    def start_postgres(self) -> None:
        self.cluster = init_cluster(self.state_dir, self.ports.postgres)
        options = FAST_UNSAFE_OPTIONS if self.fast_unsafe_postgres else ()
        self.supervisor.start(postgres_component(self.cluster, extra_options=options))
        create_database(self.cluster)
        upgrade(self.database_url)

    def cluster_admin(self):
        """Open an autocommit connection to the cluster's maintenance database."""
        return psycopg.connect(self.cluster.libpq_url("postgres"), autocommit=True)

    def start_redis(self) -> None:
        directory = self.state_dir / "redis"
        directory.mkdir(exist_ok=True)
        client = redis.Redis(host="127.0.0.1", port=self.ports.redis, socket_connect_timeout=1)
        self.supervisor.start(
            Component(
                name="redis",
                argv=[
                    REDIS_BIN,
                    "--bind", "127.0.0.1",
                    "--port", str(self.ports.redis),
                    "--dir", str(directory),
                    "--appendonly", "yes",
                    "--save", "",
                    "--protected-mode", "yes",
                ],
                url=self.urls["redis"],
                ready=client.ping,
                ready_timeout=30,
            )
        )

    def start_prometheus(self) -> None:
        directory = self.state_dir / "prometheus"
        config = write_prometheus_config(
            directory,
            profile=self.profile,
            prometheus_port=self.ports.prometheus,
            alertmanager_port=self.ports.alertmanager,
            toyprod_port=self.ports.toyprod,
            api_port=self.ports.api,
            flower_port=self.ports.flower,
            models_port=self.ports.models,
        )
        self.supervisor.start(
            Component(
                name="prometheus",
                argv=[
                    PROMETHEUS_BIN,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.ports.prometheus}",
                    # Without it, alerts' generatorURL links use the machine's host name, which may not resolve
                    # to the loopback address Prometheus listens on.
                    f"--web.external-url={self.urls['prometheus']}/",
                    "--log.level=warn",
                    *PROMETHEUS_PROFILE_FLAGS[self.profile],
                ],
                url=self.urls["prometheus"],
                ready=lambda: http_ok(f"{self.urls['prometheus']}/-/ready"),
                ready_timeout=60,
            )
        )

    def start_alertmanager(self) -> None:
        directory = self.state_dir / "alertmanager"
        config = write_alertmanager_config(
            directory,
            profile=self.profile,
            webhook_url=self.urls["trigger"],
            token_file=self.token_file,
        )
        self.supervisor.start(
            Component(
                name="alertmanager",
                argv=[
                    ALERTMANAGER_BIN,
                    f"--config.file={config}",
                    f"--storage.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.ports.alertmanager}",
                    f"--web.external-url={self.urls['alertmanager']}/",
                    # Empty: no HA gossip, which would otherwise listen on port 9094 on every interface.
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                url=self.urls["alertmanager"],
                ready=lambda: http_ok(f"{self.urls['alertmanager']}/-/ready"),
                ready_timeout=60,
            )
        )

    def start_models(self) -> None:
        """Serve the model gateway (forecaster, runbook QA, speech-to-text) with `bentoml serve`."""
        self.supervisor.start(bento_component(GATEWAY, self.ports.models, name="models"))
        self.models_url = self.urls["models"]

    def _python(self, name: str, args: list[str], **kwargs) -> Component:
        return Component(name=name, argv=[sys.executable, "-m", *args], env=self.settings_env(), **kwargs)

    def start_toyprod(self) -> None:
        self.supervisor.start(
            self._python(
                "toyprod",
                ["opsseer", "toyprod", "--host", "127.0.0.1", "--port", str(self.ports.toyprod)],
                url=self.urls["toyprod"],
                ready=lambda: http_ok(f"{self.urls['toyprod']}/healthz"),
            )
        )

    def start_api(self, workers: int = 1) -> None:
        self.supervisor.start(
            self._python(
                "api",
                ["opsseer", "api", "--host", "127.0.0.1", "--port", str(self.ports.api), "--workers", str(workers)],
                url=f"http://127.0.0.1:{self.ports.api}",
                ready=lambda: http_ok(f"http://127.0.0.1:{self.ports.api}/healthz"),
            )
        )

    def start_worker(self) -> None:
        self.supervisor.start(
            self._python(
                "worker",
                ["celery", "-A", "functions.celery_app", "worker", "--loglevel=INFO", "--concurrency=2",
                 "--hostname=worker@opsseer", "--without-gossip", "--without-mingle"],
                ready_log=r"worker@opsseer ready\.",
                ready_timeout=90,
            )
        )

    def start_beat(self) -> None:
        self.supervisor.start(
            self._python(
                "beat",
                ["celery", "-A", "functions.celery_app", "beat", "--loglevel=INFO",
                 f"--schedule={self.state_dir / 'celerybeat-schedule'}"],
                ready_log=r"beat: Starting",
            )
        )

    def start_flower(self) -> None:
        self.supervisor.start(
            self._python(
                "flower",
                ["celery", "-A", "functions.celery_app", "flower", "--address=127.0.0.1", f"--port={self.ports.flower}"],
                url=self.urls["flower"],
                ready=lambda: http_ok(f"{self.urls['flower']}/healthcheck"),
                ready_timeout=60,
            )
        )

    def start_slack_socket(self) -> None:
        """Connect the Slack bot over Socket Mode, for deployments without public ingress.

        Only when OPSSEER_SLACK_APP_TOKEN is set; otherwise Slack reaches the bot over HTTP, if at all.
        """
        if not os.environ.get("OPSSEER_SLACK_APP_TOKEN"):
            return
        self.supervisor.start(
            self._python("slack-socket", ["opsseer", "slack-socket"], ready_log=r"connected to Slack over Socket Mode")
        )

    def start(self) -> None:
        """Start every component in dependency order; on failure stop what started and re-raise."""
        try:
            for start in (
                self.start_postgres,
                self.start_redis,
                self.start_models,
                self.start_toyprod,
                self.start_api,
                self.start_worker,
                self.start_beat,
                self.start_flower,
                self.start_slack_socket,
                self.start_alertmanager,
                self.start_prometheus,
            ):
                start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.supervisor.stop_all()

    def print_urls(self, console: Console) -> None:
        table = Table(title=f"OpsSeer stack ({self.profile} profile), state in {self.state_dir}")
        table.add_column("component")
        table.add_column("URL")
        for name, url in self.urls.items():
            table.add_row(name, url)
        console.print(table)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """Turn SIGTERM into the same clean shutdown as Ctrl-C, so that no component is left running."""
    signal.signal(signal.SIGTERM, _interrupt)


STATE_DIR_OPTION = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("OPSSEER_STATE_DIR", ".opsseer"),
    show_default=".opsseer or $OPSSEER_STATE_DIR",
    help="Directory for every component's data, configuration and logs.",
)


@click.command("up")
@STATE_DIR_OPTION
@click.option("--profile", type=click.Choice(PROFILES), default="production", show_default=True,
              help="Rule and timing profile: demo uses 1 s scrapes and short alert windows.")
@click.option("--free-ports", is_flag=True, help="Pick free loopback ports instead of the defaults (18080, 19090, ...).")
def up_command(state_dir: Path, profile: str, free_ports: bool) -> None:
    """Start every component as a local process bound to 127.0.0.1; Ctrl-C stops them all."""
    console = Console(highlight=False)
    stop_on_sigterm()
    stack = Stack(state_dir, profile=profile, ports=Ports.free() if free_ports else Ports(), console=console)
    try:
        stack.start()
    except ComponentFailed as exc:
        raise click.ClickException(str(exc)) from None
    stack.print_urls(console)
    console.print("Press Ctrl-C to stop.")

    try:
        while True:
            failed = stack.supervisor.failed()
            if failed is not None:
                tail = "\n".join(failed.tail)
                stack.stop()
                raise click.ClickException(f"{failed.name} exited with code {failed.popen.returncode}:\n{tail}")
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping...")
        stack.stop()


@click.command("purge")
@STATE_DIR_OPTION
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge_command(state_dir: Path, yes: bool) -> None:
    """Delete a stopped stack's state directory, including PostgreSQL data kept outside it."""
    if not state_dir.exists():
        click.echo(f"nothing to delete: {state_dir} does not exist")
        return
    if not yes:
        click.confirm(f"Delete every incident, log and setting in {state_dir}?", abort=True)
    removed = purge_state(state_dir)
    click.echo("deleted " + ", ".join(str(path) for path in removed))
