"""Read queries of the portal. Every function takes the session first and keyword-only arguments."""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload
from starlette.concurrency import run_in_threadpool

from functions.db import Database
from functions.models import Attachment, Incident, TimelineEntry

T = TypeVar("T")


async def run_in_session(database: Database, work: Callable[..., T], /, **kwargs: Any) -> T:
    """Call work(session, **kwargs) in one session on the thread pool, so the event loop does not block on PostgreSQL.

    work must return plain data or fully loaded rows, because the session is closed when it returns.
    """

    def run() -> T:
        with database.session() as session:
            return work(session, **kwargs)

    return await run_in_threadpool(run)


def get_incident(session: Session, *, incident_id: int, with_episodes: bool = False) -> Incident | None:
    statement = select(Incident).where(Incident.id == incident_id)
    if with_episodes:
        statement = statement.options(selectinload(Incident.episodes))
    return session.scalar(statement)


def list_incidents(
    session: Session, *, status: str | None, limit: int, offset: int
) -> tuple[Sequence[Incident], int]:
    """Return one page of incidents, most recently started first, and the total count under the filter."""
    filtered = select(Incident)
    if status is not None:
        filtered = filtered.where(Incident.status == status)

    total = session.scalar(select(func.count()).select_from(filtered.subquery()))
    page = filtered.order_by(Incident.last_started_at.desc(), Incident.id.desc()).limit(limit).offset(offset)
    return session.scalars(page).all(), total or 0


def list_timeline(
    session: Session, *, incident_id: int, after_id: int = 0, limit: int | None = None
) -> Sequence[TimelineEntry]:
    """Return the incident's timeline entries with an id above after_id, in id order."""
    statement = (
        select(TimelineEntry)
        .where(TimelineEntry.incident_id == incident_id, TimelineEntry.id > after_id)
        .order_by(TimelineEntry.id)
    )
    if limit is not None:
        statement = statement.limit(limit)
    return session.scalars(statement).all()


def list_timeline_ids(session: Session, *, incident_id: int, after_id: int) -> Sequence[int]:
    statement = (
        select(TimelineEntry.id)
        .where(TimelineEntry.incident_id == incident_id, TimelineEntry.id > after_id)
        .order_by(TimelineEntry.id)
    )
    return session.scalars(statement).all()


def list_timeline_by_ids(session: Session, *, ids: Sequence[int]) -> Sequence[TimelineEntry]:
    statement = select(TimelineEntry).where(TimelineEntry.id.in_(ids)).order_by(TimelineEntry.id)
    return session.scalars(statement).all()


def get_attachment(session: Session, *, attachment_id: int) -> Attachment | None:
    return session.get(Attachment, attachment_id)
