"""The GitHub notification seam: tell the issue tracker that an episode fired or resolved.

Slack has its own steps in functions.tasks.slack. No GitHub integration is part of this release, so these
steps record that GitHub is not configured.
"""

from sqlalchemy.orm import Session

from functions.celery_app import app
from functions.models import Episode, Incident
from functions.tasks.base import OpsSeerTask, StepResult, run_step

CHANNELS = ("github",)


def _not_configured(event: str) -> StepResult:
    # TODO: open or close the GitHub issue once that integration exists.
    return StepResult(
        title=f"No {event} notification sent to GitHub: GitHub is not configured",
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
