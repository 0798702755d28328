"""Notification steps: tell chat and issue trackers that an episode fired or resolved.

No Slack integration is part of this release, so both steps record that chat notifications are not
configured. GitHub issues have their own steps in functions.tasks.github.
"""

from sqlalchemy.orm import Session

from functions.celery_app import app
from functions.models import Episode, Incident
from functions.tasks.base import OpsSeerTask, StepResult, run_step

CHANNELS = ("slack",)


def _not_configured(event: str) -> StepResult:
    # TODO: post to Slack once that integration exists.
    return StepResult(
        title=f"No {event} chat notification sent: Slack is not configured",
        status="not_configured",
        payload={"event": event, "channels": {channel: "not_configured" for channel in CHANNELS}},
    )


def _notify_fired(session: Session, incident: Incident, episode: Episode) -> StepResult:
    return _not_configured("firing")


def _notify_resolved(session: Session, incident: Incident, episode: Episode) -> StepResult:
    return _not_configured("resolved")


@app.task(bind=True, base=OpsSeerTask, name="opsseer.notify_fired")
def notify_fired(self: OpsSeerTask, episode_id: int) -> dict:
    """Notify the configured channels that an episode fired."""
    return run_step(self, episode_id=episode_id, step="notify", body=_notify_fired)


@app.task(bind=True, base=OpsSeerTask, name="opsseer.notify_resolved")
def notify_resolved(self: OpsSeerTask, episode_id: int) -> dict:
    """Notify the configured channels that an episode resolved."""
    return run_step(self, episode_id=episode_id, step="notify_resolved", body=_notify_resolved)
