"""Closing entries of the two pipelines: the enrichment summary and the resolution record."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from functions.celery_app import app
from functions.models import Episode, Incident, TimelineEntry
from functions.tasks.base import OpsSeerTask, StepResult, run_step
from functions.timeline import format_duration, step_key

ENRICHMENT_STEPS = ("snapshot", "forecast", "runbook", "slack", "github")


def _summarize(session: Session, incident: Incident, episode: Episode) -> StepResult:
    keys = {step_key(episode.id, step): step for step in ENRICHMENT_STEPS}
    rows = session.execute(
        select(TimelineEntry.idempotency_key, TimelineEntry.status).where(TimelineEntry.idempotency_key.in_(keys))
    )
    statuses = {step: "missing" for step in ENRICHMENT_STEPS}
    for key, status in rows:
        statuses[keys[key]] = status
    described = ", ".join(f"{step} {status.replace('_', ' ')}" for step, status in statuses.items())
    return StepResult(
        title=f"Enrichment finished for episode {episode.sequence}: {described}",
        status="ok" if all(status != "failed" for status in statuses.values()) else "failed",
        payload={"steps": statuses},
    )


def _resolution(session: Session, incident: Incident, episode: Episode) -> StepResult:
    if episode.ended_at is None:
        # The resolution pipeline only starts for closed episodes; reaching this means the row changed under it.
        raise RuntimeError(f"episode {episode.id} is not resolved")
    duration = episode.duration_seconds
    title = f"Resolved after {format_duration(duration)}"
    if not episode.firing_seen:
        title += " (the firing notification was never received)"
    return StepResult(
        title=title,
        payload={
            "started_at": episode.started_at.isoformat(),
            "ended_at": episode.ended_at.isoformat(),
            "duration_seconds": duration,
            "firing_seen": episode.firing_seen,
        },
    )


@app.task(bind=True, base=OpsSeerTask, name="opsseer.summarize_episode")
def summarize_episode(self: OpsSeerTask, episode_id: int) -> dict:
    """Record which enrichment steps succeeded for an episode."""
    return run_step(self, episode_id=episode_id, step="summary", body=_summarize)


@app.task(bind=True, base=OpsSeerTask, name="opsseer.record_resolution")
def record_resolution(self: OpsSeerTask, episode_id: int) -> dict:
    """Record that an episode resolved and how long it lasted."""
    return run_step(self, episode_id=episode_id, step="resolution", body=_resolution)
