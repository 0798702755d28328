"""Periodic check for firing incidents that stopped receiving notifications.

Alertmanager re-sends a firing alert every repeat_interval, so silence for longer than the configured time
means something upstream broke. Such incidents are marked stale, never closed.
"""

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from functions.celery_app import app
from functions.models import FIRING, Incident
from functions.settings import get_settings
from functions.tasks.base import OpsSeerTask, database
from functions.timeline import add_entry, format_duration

logger = logging.getLogger(__name__)


def mark_stale(now: datetime, stale_after: timedelta) -> list[int]:
    """Mark firing incidents without a notification since now - stale_after; return their ids."""
    with database().session() as session:
        rows = session.execute(
            update(Incident)
            .where(Incident.status == FIRING, Incident.stale_since.is_(None), Incident.last_notified_at < now - stale_after)
            .values(stale_since=now)
            .returning(Incident.id, Incident.last_notified_at)
        ).all()
        for incident_id, last_notified_at in rows:
            silence = format_duration((now - last_notified_at).total_seconds())
            add_entry(
                session,
                incident_id=incident_id,
                episode_id=None,
                key=f"incident:{incident_id}:stale:{last_notified_at.isoformat()}",
                kind="stale",
                status="ok",
                title=f"Marked stale: no notification from Alertmanager for {silence}; the incident stays open",
                payload={"last_notified_at": last_notified_at.isoformat(), "stale_after_seconds": stale_after.total_seconds()},
            )
    for incident_id, _ in rows:
        logger.warning("incident %s marked stale: no notification since the stale threshold", incident_id)
    return [incident_id for incident_id, _ in rows]


@app.task(bind=True, base=OpsSeerTask, name="opsseer.mark_stale_incidents")
def mark_stale_incidents(self: OpsSeerTask) -> list[int]:
    """Mark firing incidents stale when Alertmanager has been silent about them for too long."""
    return mark_stale(datetime.now(UTC), timedelta(seconds=get_settings().stale_after_seconds))
