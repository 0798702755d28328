"""Read an episode's state from the incident store into the view that the Block Kit rendering takes."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from functions.models import Episode, TimelineEntry
from functions.slack.blocks import IncidentView

# Entry kinds the root message shows; later entries of other kinds go to the thread.
ROOT_KINDS = ("snapshot", "forecast", "proactive_warning", "runbook")


def entry_dict(entry: TimelineEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "kind": entry.kind,
        "status": entry.status,
        "title": entry.title,
        "payload": entry.payload or {},
        "model": entry.model,
    }


def build_view(session: Session, episode: Episode, portal_url: str) -> tuple[IncidentView, int]:
    """Return the episode's view and the id of the newest timeline entry of its incident at this moment."""
    incident = episode.incident
    rows = session.scalars(
        select(TimelineEntry)
        .where(TimelineEntry.episode_id == episode.id, TimelineEntry.kind.in_(ROOT_KINDS))
        .order_by(TimelineEntry.id)
    ).all()
    newest = session.scalar(select(func.max(TimelineEntry.id)).where(TimelineEntry.incident_id == incident.id)) or 0
    view = IncidentView(
        incident_id=incident.id,
        episode_id=episode.id,
        sequence=episode.sequence,
        title=incident.title,
        alertname=incident.alertname,
        severity=incident.severity,
        status=episode.status,
        labels=dict(incident.labels or {}),
        annotations=dict(episode.annotations or incident.annotations or {}),
        started_at=episode.started_at,
        ended_at=episode.ended_at,
        generator_url=incident.generator_url or "",
        acknowledged_by=episode.acknowledged_by,
        acknowledged_at=episode.acknowledged_at,
        resolved_by=episode.resolved_by,
        portal_url=portal_url,
        entries={row.kind: entry_dict(row) for row in rows},
    )
    return view, newest
