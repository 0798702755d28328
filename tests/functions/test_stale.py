"""Stale marking of firing incidents that stopped receiving notifications."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from functions.celery_app import app as celery_app
from functions.models import TimelineEntry
from functions.tasks import stale
from functions.tasks.stale import mark_stale
from tests.functions.helpers import Trigger, alert, incident, payload, resolved


@pytest.fixture
def trigger(settings, database) -> Trigger:
    return Trigger(settings, database)


def test_silent_firing_incident_marked_stale_not_closed(trigger, database):
    trigger.send(payload(alert()))
    later = datetime.now(UTC) + timedelta(hours=7)

    marked = mark_stale(later, timedelta(hours=6))

    row = incident(database)
    assert marked == [row.id]
    assert row.stale_since == later
    assert row.status == "firing"
    with database.session() as session:
        entry = session.scalar(select(TimelineEntry).where(TimelineEntry.kind == "stale"))
        assert "stays open" in entry.title


def test_recent_incident_not_marked_stale(trigger, database):
    trigger.send(payload(alert()))

    assert mark_stale(datetime.now(UTC), timedelta(hours=6)) == []
    assert incident(database).stale_since is None


def test_resolved_incident_never_marked_stale(trigger, database):
    trigger.send(payload(alert()))
    trigger.send(payload(resolved()))

    assert mark_stale(datetime.now(UTC) + timedelta(days=30), timedelta(hours=6)) == []


def test_stale_marked_once_and_cleared_by_notification(trigger, database):
    trigger.send(payload(alert()))
    later = datetime.now(UTC) + timedelta(hours=7)
    mark_stale(later, timedelta(hours=6))

    assert mark_stale(later + timedelta(hours=1), timedelta(hours=6)) == []
    trigger.send(payload(alert()))
    assert incident(database).stale_since is None


# Task objects are reached through their module: a task imported into a test module's namespace is a lazy
# proxy that pytest's collection would evaluate, loading Celery's configuration before the fixtures set it.


def test_beat_schedules_stale_check(settings):
    schedule = celery_app.conf.beat_schedule

    assert schedule["mark-stale-incidents"]["task"] == stale.mark_stale_incidents.name
    assert schedule["mark-stale-incidents"]["schedule"] == settings.stale_check_interval_seconds


def test_stale_task_runs_on_worker(worker, trigger, database):
    trigger.send(payload(alert()))

    result = stale.mark_stale_incidents.delay()

    assert result.get(timeout=30) == []
