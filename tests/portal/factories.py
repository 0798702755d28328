"""Row builders for portal tests: incidents with episodes, timeline entries and attachments."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from functions.db import Database
from functions.models import Attachment, Episode, Incident, TimelineEntry

T0 = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256))

_keys = itertools.count(1)


def add_incident(
    session: Session,
    *,
    title: str = "Checkout latency above SLO",
    alertname: str = "HighLatency",
    severity: str = "critical",
    status: str = "firing",
    labels: dict[str, Any] | None = None,
    annotations: dict[str, Any] | None = None,
    started_at: datetime = T0,
    resolved_at: datetime | None = None,
    stale_since: datetime | None = None,
    episodes: int = 1,
    generator_url: str = "",
) -> Incident:
    """Insert an incident whose episodes start an hour apart. Every episode but the last resolves after ten minutes."""
    key = next(_keys)
    last_started_at = started_at + timedelta(hours=episodes - 1)
    incident = Incident(
        fingerprint=f"fp-{key}",
        fingerprint_source="alertmanager",
        alertname=alertname,
        severity=severity,
        title=title,
        labels=labels if labels is not None else {"alertname": alertname, "service": "checkout"},
        annotations=annotations if annotations is not None else {"summary": title},
        generator_url=generator_url,
        status=status,
        first_started_at=started_at,
        last_started_at=last_started_at,
        resolved_at=resolved_at,
        last_notified_at=last_started_at,
        stale_since=stale_since,
        episode_count=episodes,
    )
    session.add(incident)
    session.flush()

    for sequence in range(1, episodes + 1):
        episode_start = started_at + timedelta(hours=sequence - 1)
        last = sequence == episodes
        session.add(
            Episode(
                incident_id=incident.id,
                sequence=sequence,
                status=status if last else "resolved",
                started_at=episode_start,
                ended_at=resolved_at if last else episode_start + timedelta(minutes=10),
                annotations=incident.annotations,
            )
        )
    session.flush()
    return incident


def add_entry(
    session: Session,
    incident: Incident,
    *,
    kind: str = "alert",
    title: str = "Alert HighLatency firing (episode 1)",
    status: str = "ok",
    payload: dict[str, Any] | None = None,
    model: str | None = None,
    occurred_at: datetime = T0,
) -> TimelineEntry:
    entry = TimelineEntry(
        incident_id=incident.id,
        episode_id=None,
        idempotency_key=f"test:{next(_keys)}",
        kind=kind,
        status=status,
        title=title,
        payload=payload if payload is not None else {},
        model=model,
        occurred_at=occurred_at,
    )
    session.add(entry)
    session.flush()
    return entry


def add_attachment(
    session: Session, incident: Incident, *, data: bytes = PNG_BYTES, content_type: str = "image/png"
) -> Attachment:
    attachment = Attachment(
        incident_id=incident.id,
        episode_id=None,
        idempotency_key=f"test:{next(_keys)}",
        content_type=content_type,
        data=data,
    )
    session.add(attachment)
    session.flush()
    return attachment


def create_incident(database: Database, **kwargs: Any) -> Incident:
    """Insert and commit an incident in its own session."""
    with database.session() as session:
        return add_incident(session, **kwargs)


def create_entry(database: Database, incident: Incident, **kwargs: Any) -> TimelineEntry:
    """Insert and commit a timeline entry in its own session."""
    with database.session() as session:
        return add_entry(session, incident, **kwargs)
