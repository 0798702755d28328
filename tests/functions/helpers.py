"""Builders for Alertmanager webhook payloads and a client for the trigger."""

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from functions.db import Database
from functions.models import Alert, Episode, Incident, TimelineEntry, WebhookDelivery
from functions.triggers import WEBHOOK_PATH
from opsseer.server import create_app

ZERO_TIME = "0001-01-01T00:00:00Z"
T0 = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def alert(
    status: str = "firing",
    *,
    name: str = "HighLatency",
    fingerprint: str | None = "fp-high-latency",
    starts_at: datetime = T0,
    ends_at: datetime | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    item = {
        "status": status,
        "labels": {"alertname": name, "severity": "critical", "service": "toyprod", **(labels or {})},
        "annotations": annotations if annotations is not None else {"summary": f"{name} is firing"},
        "startsAt": iso(starts_at),
        "endsAt": iso(ends_at) if ends_at else ZERO_TIME,
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
    }
    if fingerprint is not None:
        item["fingerprint"] = fingerprint
    return item


def payload(*alerts: dict[str, Any], status: str | None = None, truncated: int = 0, receiver: str = "opsseer") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighLatency"}',
        "truncatedAlerts": truncated,
        "status": status or ("firing" if any(a["status"] == "firing" for a in alerts) else "resolved"),
        "receiver": receiver,
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": list(alerts),
    }


def resolved(starts_at: datetime = T0, ends_at: datetime | None = None, **kwargs: Any) -> dict[str, Any]:
    return alert("resolved", starts_at=starts_at, ends_at=ends_at or starts_at + timedelta(minutes=5), **kwargs)


class Trigger:
    """The real trigger app in-process, with the enqueued pipelines recorded instead of sent to Celery."""

    def __init__(self, settings, database: Database) -> None:
        self.enqueued: list[tuple[list[int], list[int]]] = []
        self.app = create_app(settings, enqueue=self._record, database=database)
        self.client = TestClient(self.app, raise_server_exceptions=False)
        self.token = settings.webhook_token.get_secret_value()

    def _record(self, opened: list[int], resolved_ids: list[int]) -> None:
        self.enqueued.append((opened, resolved_ids))

    def post(self, body: Any, *, token: str | None = None, raw: bytes | None = None, headers: dict | None = None):
        content = raw if raw is not None else json.dumps(body).encode()
        all_headers = {"Authorization": f"Bearer {token or self.token}", "Content-Type": "application/json", **(headers or {})}
        return self.client.post(WEBHOOK_PATH, content=content, headers=all_headers)

    def send(self, body: Any) -> dict:
        response = self.post(body)
        assert response.status_code == 200, response.text
        return response.json()


def counts(database: Database) -> dict[str, int]:
    with database.session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Incident, Episode, Alert, TimelineEntry, WebhookDelivery)
        }


def state(database: Database) -> list[tuple]:
    """Incident and episode state, without the bookkeeping columns that every delivery touches."""
    with database.session() as session:
        incidents = session.execute(
            select(Incident.fingerprint, Incident.status, Incident.first_started_at, Incident.resolved_at, Incident.episode_count)
            .order_by(Incident.id)
        ).all()
        episodes = session.execute(
            select(Episode.incident_id, Episode.sequence, Episode.status, Episode.started_at, Episode.ended_at).order_by(Episode.id)
        ).all()
        entries = session.execute(select(TimelineEntry.idempotency_key).order_by(TimelineEntry.id)).all()
    return [tuple(incidents), tuple(episodes), tuple(entries)]


def incident(database: Database, fingerprint: str = "fp-high-latency") -> Incident:
    with database.session() as session:
        row = session.scalar(
            select(Incident).where(Incident.fingerprint == fingerprint).options(selectinload(Incident.episodes))
        )
        assert row is not None, f"no incident for fingerprint {fingerprint}"
        return row


def entries_by_kind(database: Database, incident_id: int | None = None) -> dict[str, TimelineEntry]:
    """Return the timeline entries (of one incident, or of all) by kind; a later entry of a kind replaces an earlier one."""
    query = select(TimelineEntry)
    if incident_id is not None:
        query = query.where(TimelineEntry.incident_id == incident_id)
    with database.session() as session:
        return {row.kind: row for row in session.scalars(query).all()}


def wait_for_entry(database: Database, kind: str, *, timeout: float = 60.0, incident_id: int | None = None) -> dict[str, TimelineEntry]:
    """Poll until an entry of `kind` exists and return the entries by kind, or fail naming the kinds seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = entries_by_kind(database, incident_id)
        if kind in entries:
            return entries
        time.sleep(0.3)
    raise AssertionError(f"no {kind} entry within {timeout} s; entries: {sorted(entries_by_kind(database, incident_id))}")
