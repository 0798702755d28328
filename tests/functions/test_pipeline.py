"""The Celery pipelines on a real worker, Redis, PostgreSQL and Prometheus."""

import os
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import quote_plus

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from functions.models import Attachment, FunctionRun, TimelineEntry
from functions.settings import get_settings
from functions.tasks import base, pipelines, snapshot
from opsseer.server import celery_enqueue
from tests.functions.helpers import (
    T0,
    Trigger,
    alert,
    entries_by_kind,
    payload,
    resolved,
    wait_for_entry,
)

EXPECTED_STEPS = {
    "alert": "ok",
    "snapshot": "ok",
    "forecast": "ok",
    "runbook": "ok",
    "slack": "not_configured",
    "github": "not_configured",
    "summary": "ok",
}


@pytest.fixture
def trigger(settings, database) -> Trigger:
    live = Trigger(settings, database)
    live.app.state.enqueue = celery_enqueue
    return live


# Each test starts from an empty store, so its incident is number 1.
_entries = partial(entries_by_kind, incident_id=1)
_wait_for_entry = partial(wait_for_entry, incident_id=1)


def _github_steps(database) -> dict[str, str]:
    """The GitHub steps' entries share the kind "github"; the payload names the step."""
    with database.session() as session:
        rows = session.scalars(select(TimelineEntry).where(TimelineEntry.kind == "github")).all()
    return {row.payload["step"]: row.status for row in rows}


def _live_alert(prometheus_url: str, **kwargs):
    item = alert(starts_at=datetime.now(UTC) - timedelta(seconds=20), **kwargs)
    expression = quote_plus('up{job="toyprod"} > 0')
    item["generatorURL"] = f"{prometheus_url}/graph?g0.expr={expression}&g0.tab=1"
    return item


def test_enrichment_pipeline_records_every_step(worker, prometheus_history, trigger, database):
    trigger.send(payload(_live_alert(prometheus_history.urls["prometheus"])))

    entries = _wait_for_entry(database, "summary")

    assert {kind: entry.status for kind, entry in entries.items()} == EXPECTED_STEPS
    assert entries["snapshot"].payload["query"] == 'up{job="toyprod"}'
    assert entries["snapshot"].payload["threshold"] == 0
    assert entries["summary"].payload["steps"] == {"snapshot": "ok", "forecast": "ok", "runbook": "ok", "slack": "not_configured", "github": "not_configured"}
    with database.session() as session:
        chart = session.get(Attachment, entries["snapshot"].payload["attachment_id"])
        assert chart.content_type == "image/png"
        assert chart.data.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(chart.data) > 5000


def test_pipeline_run_twice_adds_nothing(worker, prometheus, trigger, database):
    trigger.send(payload(_live_alert(prometheus.urls["prometheus"])))
    _wait_for_entry(database, "summary")
    with database.session() as session:
        before = session.scalar(select(func.count()).select_from(TimelineEntry))
        episode_id = session.scalar(select(TimelineEntry.episode_id).where(TimelineEntry.kind == "summary"))

    pipelines.enrichment_canvas(episode_id).apply_async().get(timeout=60)

    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(TimelineEntry)) == before
        assert session.scalar(select(func.count()).select_from(Attachment)) == 1


def test_resolve_records_duration(worker, trigger, database):
    trigger.send(payload(alert()))
    trigger.send(payload(resolved(ends_at=T0 + timedelta(seconds=95))))

    entries = _wait_for_entry(database, "resolution")

    assert entries["resolution"].payload["duration_seconds"] == 95
    assert entries["resolution"].title == "Resolved after 1m 35s"
    entries = _wait_for_entry(database, "slack_resolved")
    assert entries["slack_resolved"].status == "not_configured"
    deadline = time.monotonic() + 60
    while not (steps := _github_steps(database)).get("github_resolved") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert steps == {"github": "not_configured", "github_resolved": "not_configured"}


@pytest.fixture
def dead_prometheus(monkeypatch):
    monkeypatch.setenv("OPSSEER_PROMETHEUS_URL", "http://127.0.0.1:1")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_snapshot_retries_then_records_failure(settings, database, dead_prometheus):
    trigger = Trigger(settings, database)
    body = trigger.send(payload(alert()))
    episode_id = body["opened_episodes"][0]

    result = snapshot.capture_snapshot.apply(args=[episode_id]).get()

    assert result == {"step": "snapshot", "status": "failed"}
    entry = _entries(database)["snapshot"]
    assert entry.status == "failed"
    assert "after 3 attempts" in entry.title
    assert "127.0.0.1:1" in entry.payload["error"]
    with database.session() as session:
        states = session.scalars(select(FunctionRun.state).order_by(FunctionRun.id)).all()
    assert states == ["retrying", "retrying", "failed"]


def test_failed_step_still_gets_summary(settings, database, dead_prometheus):
    trigger = Trigger(settings, database)
    episode_id = trigger.send(payload(alert()))["opened_episodes"][0]

    pipelines.enrichment_canvas(episode_id).apply().get()

    summary = _entries(database)["summary"]
    assert summary.status == "failed"
    assert summary.payload["steps"]["snapshot"] == "failed"
    assert summary.payload["steps"]["slack"] == "not_configured"
    assert summary.payload["steps"]["github"] == "not_configured"


def test_retry_countdown_backs_off_exponentially(settings):
    task = snapshot.capture_snapshot
    countdowns = []
    for retries in range(5):
        task.push_request(retries=retries)
        countdowns.append(task.retry_countdown())
        task.pop_request()

    assert countdowns == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert os.environ["OPSSEER_TASK_RETRY_BACKOFF_MAX_SECONDS"] == "1"


def test_sweep_starts_pipelines_missed_during_broker_outage(worker, settings, database):
    def broker_down(opened, resolved_ids):
        raise ConnectionRefusedError("redis is down")

    outage = Trigger(settings, database)
    outage.app.state.enqueue = broker_down
    outage.send(payload(alert()))
    outage.send(payload(resolved(ends_at=T0 + timedelta(seconds=30))))

    swept = pipelines.sweep_pending_pipelines.apply().get()

    assert swept == {"enrichment": [1], "resolution": [1]}
    entries = _wait_for_entry(database, "summary")
    assert "resolution" in _wait_for_entry(database, "resolution")
    assert entries["alert"].status == "ok"
    assert pipelines.sweep_pending_pipelines.apply().get() == {"enrichment": [], "resolution": []}


@pytest.fixture
def dead_database(settings, monkeypatch):
    monkeypatch.setenv("OPSSEER_DATABASE_URL", "postgresql+psycopg://opsseer:x@127.0.0.1:1/opsseer")
    get_settings.cache_clear()
    base.database.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    base.database.cache_clear()


def test_step_retries_unreachable_store_then_raises(dead_database, caplog):
    result = snapshot.capture_snapshot.apply(args=[1])

    with pytest.raises(OperationalError):
        result.get()
    retries = [record for record in caplog.records if "retrying in" in record.getMessage()]
    assert len(retries) == 2
    assert any("gave up" in record.getMessage() for record in caplog.records)
