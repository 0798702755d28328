"""Timeline and attachment writes. Each row carries an idempotency key, so a repeated write is a no-op."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from functions.models import Attachment, TimelineEntry


def format_duration(seconds: float) -> str:
    """Format seconds as the largest two units, such as "1h 5m" or "3m 12s"."""
    whole = max(0, int(round(seconds)))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    largest_units = [f"{value}{unit}" for value, unit in parts if value][:2]
    return " ".join(largest_units) or "0s"


def format_offset(seconds: float) -> str:
    """Format an offset into a recording as m:ss, or h:mm:ss from one hour on."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def step_key(episode_id: int, step: str) -> str:
    return f"episode:{episode_id}:{step}"


def add_entry(
    session: Session,
    *,
    incident_id: int,
    episode_id: int | None,
    key: str,
    kind: str,
    title: str,
    status: str = "ok",
    payload: dict[str, Any] | None = None,
    model: str | None = None,
    occurred_at: datetime | None = None,
) -> bool:
    """Insert a timeline entry unless one with the same key exists; return True when a row was written."""
    values = {
        "incident_id": incident_id,
        "episode_id": episode_id,
        "idempotency_key": key,
        "kind": kind,
        "status": status,
        "title": title,
        "payload": payload or {},
        "model": model,
    }
    if occurred_at is not None:
        values["occurred_at"] = occurred_at
    statement = pg_insert(TimelineEntry).values(**values).on_conflict_do_nothing(index_elements=["idempotency_key"])
    return session.execute(statement.returning(TimelineEntry.id)).first() is not None


def get_entry(session: Session, *, key: str) -> TimelineEntry | None:
    return session.scalar(select(TimelineEntry).where(TimelineEntry.idempotency_key == key))


def add_attachment(
    session: Session, *, incident_id: int, episode_id: int | None, key: str, content_type: str, data: bytes
) -> int:
    """Store an attachment once per key and return its id."""
    statement = (
        pg_insert(Attachment)
        .values(incident_id=incident_id, episode_id=episode_id, idempotency_key=key, content_type=content_type, data=data)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    session.execute(statement)
    return session.scalar(select(Attachment.id).where(Attachment.idempotency_key == key))
