"""`opsseer demo`: a whole incident on the real chain, from injected fault to resolve.

The demo starts the stack with the demo profile, drives traffic at toyprod and injects extra latency. It then
waits for Prometheus to fire the latency SLO alert, for Alertmanager's webhook to open a new episode and for the
enrichment pipeline to finish. Last, it clears the fault and waits for the resolved notification to close that
episode.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click
import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import select

from functions.db import Database
from functions.models import RESOLVED, Episode, Incident, TimelineEntry
from functions.prometheus import PrometheusClient
from functions.timeline import step_key
from opsseer.stack import STATE_DIR_OPTION, Ports, Stack, stop_on_sigterm
from opsseer.supervisor import ComponentFailed
from toyprod.load import run_load

ALERT_NAME = "ToyprodLatencySLOBreach"
FAULT_LATENCY_MS = 400
LOAD_RATE_PER_S = 25
LOAD_MAX_SECONDS = 600
# Healthy traffic before the fault, so the snapshot chart shows the latency before and after the breach.
BASELINE_SECONDS = 20
QUIET_LOGGERS = ("opsseer.supervisor", "opsseer.postgres", "alembic", "alerting.render", "toyprod.load")

T = TypeVar("T")


class StageFailed(RuntimeError):
    def __init__(self, stage: str, waited: float) -> None:
        super().__init__(f"stage failed: {stage} did not happen within {waited:g} s")
        self.stage = stage


@dataclass
class Timeouts:
    alert_firing: float = 90.0
    webhook: float = 120.0
    enrichment: float = 90.0
    resolve: float = 150.0


def wait_for(stage: str, timeout: float, probe: Callable[[], T | None], console: Console, interval: float = 1.0) -> T:
    """Poll probe until it returns a value other than None or False, or raise StageFailed naming the stage."""
    started = time.monotonic()
    with console.status(f"waiting for {stage} (up to {timeout:.0f} s)"):
        while True:
            value = probe()
            if value:
                console.print(f"[green]✓[/green] {stage} after {time.monotonic() - started:.1f} s")
                return value
            if time.monotonic() - started > timeout:
                raise StageFailed(stage, timeout)
            time.sleep(interval)


def _alert_firing(prometheus: PrometheusClient) -> bool:
    return any(alert["labels"].get("alertname") == ALERT_NAME and alert["state"] == "firing" for alert in prometheus.alerts())


def latest_episode_id(database: Database) -> int:
    """Return the id of the demo alert's newest episode, or 0 when there is none."""
    with database.session() as session:
        latest = session.scalar(
            select(Episode.id).join(Incident).where(Incident.alertname == ALERT_NAME).order_by(Episode.id.desc())
        )
    return latest or 0


def new_episode(database: Database, after_id: int) -> Episode | None:
    """Return the demo alert's first episode newer than after_id, so a reused state directory cannot fake a stage."""
    with database.session() as session:
        return session.scalar(
            select(Episode).join(Incident).where(Incident.alertname == ALERT_NAME, Episode.id > after_id).order_by(Episode.id)
        )


def entry_exists(database: Database, episode_id: int, step: str) -> bool:
    """Return True when the step's timeline entry exists, found by its idempotency key."""
    with database.session() as session:
        key = step_key(episode_id, step)
        return session.scalar(select(TimelineEntry.id).where(TimelineEntry.idempotency_key == key)) is not None


def episode_resolved(database: Database, episode_id: int) -> bool:
    with database.session() as session:
        return session.get(Episode, episode_id).status == RESOLVED


ENRICHMENT_KINDS = ("snapshot", "forecast", "proactive_warning", "runbook")


def print_enrichment(database: Database, episode_id: int, console: Console) -> None:
    """Print what the AI enrichment found: the snapshot, the forecast and any warning, the runbook answer."""
    with database.session() as session:
        entries = session.scalars(
            select(TimelineEntry)
            .where(TimelineEntry.episode_id == episode_id, TimelineEntry.kind.in_(ENRICHMENT_KINDS))
            .order_by(TimelineEntry.id)
        ).all()
        for entry in entries:
            model = f" [{entry.model}]" if entry.model else ""
            console.print(Text(f"  {entry.kind} ({entry.status}){model}: {entry.title}"))


def print_timeline(database: Database, incident_id: int, console: Console) -> None:
    with database.session() as session:
        incident = session.get(Incident, incident_id)
        entries = session.scalars(
            select(TimelineEntry).where(TimelineEntry.incident_id == incident_id).order_by(TimelineEntry.id)
        ).all()
        # Text cells, not strings: alert text may contain "[...]", which rich would read as markup.
        table = Table(title=Text(f"Incident {incident.id}: {incident.title} ({incident.status})"))
        table.add_column("time (UTC)")
        table.add_column("kind")
        table.add_column("status")
        table.add_column("entry")
        for entry in entries:
            occurred = entry.occurred_at.astimezone(UTC).strftime("%H:%M:%S")
            table.add_row(occurred, Text(entry.kind), Text(entry.status), Text(entry.title))
    console.print(table)


def run_demo(stack: Stack, console: Console, timeouts: Timeouts) -> int:
    """Run the demo stages on a started stack and return the incident id."""
    toyprod = httpx.Client(base_url=stack.urls["toyprod"], timeout=5)
    prometheus = PrometheusClient(stack.urls["prometheus"])
    database = Database(stack.database_url, pool_size=2)
    stop_load = threading.Event()
    load = threading.Thread(
        target=run_load,
        kwargs={
            "url": f"{stack.urls['toyprod']}/orders",
            "rate_per_s": LOAD_RATE_PER_S,
            "duration_s": LOAD_MAX_SECONDS,
            "concurrency": 32,
            "progress": False,
            "stop_event": stop_load,
        },
        name="demo-load",
        daemon=True,
    )
    try:
        load.start()
        console.print(f"driving {LOAD_RATE_PER_S} requests/s at {stack.urls['toyprod']}/orders")
        time.sleep(BASELINE_SECONDS)

        baseline = latest_episode_id(database)
        toyprod.put("/chaos", json={"latency_ms": FAULT_LATENCY_MS}).raise_for_status()
        console.print(f"injected {FAULT_LATENCY_MS} ms of extra latency into toyprod at {datetime.now(UTC):%H:%M:%S} UTC")
        wait_for(f"{ALERT_NAME} firing in Prometheus", timeouts.alert_firing, lambda: _alert_firing(prometheus), console)
        episode = wait_for("the webhook from Alertmanager", timeouts.webhook, lambda: new_episode(database, baseline), console)
        wait_for(
            "the enrichment pipeline's summary",
            timeouts.enrichment,
            lambda: entry_exists(database, episode.id, "summary"),
            console,
        )
        print_enrichment(database, episode.id, console)

        toyprod.delete("/chaos").raise_for_status()
        console.print(f"cleared the fault at {datetime.now(UTC):%H:%M:%S} UTC")
        wait_for("the resolved notification", timeouts.resolve, lambda: episode_resolved(database, episode.id), console)
        wait_for(
            "the resolution entry", timeouts.enrichment, lambda: entry_exists(database, episode.id, "resolution"), console
        )
        print_timeline(database, episode.incident_id, console)
        return episode.incident_id
    finally:
        stop_load.set()
        load.join(timeout=15)
        toyprod.close()
        prometheus.close()
        database.dispose()


@click.command("demo")
@STATE_DIR_OPTION
@click.option("--keep-running", is_flag=True, help="Leave the stack running after the demo until Ctrl-C.")
@click.option("--verbose", is_flag=True, help="Print every component's log lines as well.")
def demo_command(state_dir: Path, keep_running: bool, verbose: bool) -> None:
    """Inject a latency fault into toyprod and follow the incident from alert to resolve."""
    console = Console(highlight=False)
    stop_on_sigterm()
    if not verbose:
        # The stage lines are the demo's output; component start-up and load progress go to the log files.
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    started = time.monotonic()
    stack = Stack(state_dir / "demo", profile="demo", ports=Ports(), echo=verbose, console=console)
    console.print(f"starting the stack (demo profile); logs in {stack.state_dir / 'logs'}")
    try:
        stack.start()
    except ComponentFailed as exc:
        raise click.ClickException(str(exc)) from None

    try:
        incident_id = run_demo(stack, console, Timeouts())
    except StageFailed as exc:
        console.print(f"[red]{exc}[/red]; component logs are in {stack.state_dir / 'logs'}")
        stack.stop()
        raise SystemExit(1) from None
    except BaseException:
        stack.stop()
        raise

    console.print(f"incident {incident_id} fired and resolved in {time.monotonic() - started:.0f} s")
    console.print(f"portal: http://127.0.0.1:{stack.ports.api}/incidents/{incident_id}")
    if keep_running:
        console.print("the stack keeps running; press Ctrl-C to stop it")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    stack.stop()
