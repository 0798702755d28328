"""Launch the per-episode pipelines as Celery canvases.

Enrichment of a new episode: snapshot, forecast and runbook run in parallel, then Slack and the GitHub
issue in parallel, then the summary. Resolution of an episode: the resolution record, then the Slack
update and the GitHub issue's close in parallel.

Each episode is claimed by setting pipeline_started_at (or resolution_started_at) in the same transaction
that enqueues its canvas, so the trigger and the periodic sweep never start a pipeline twice.
"""

import logging
from collections.abc import Callable

from celery import chain, group
from celery.canvas import Signature
from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import InstrumentedAttribute

from functions.celery_app import app
from functions.models import RESOLVED, Episode
from functions.tasks.base import OpsSeerTask, database
from functions.tasks.enrichment import answer_runbook, forecast_breach
from functions.tasks.github import close_github_issue, sync_github_issue
from functions.tasks.slack import post_slack_root, update_slack_root
from functions.tasks.snapshot import capture_snapshot
from functions.tasks.summary import record_resolution, summarize_episode

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500


def enrichment_canvas(episode_id: int) -> Signature:
    return chain(
        group(capture_snapshot.si(episode_id), forecast_breach.si(episode_id), answer_runbook.si(episode_id)),
        group(post_slack_root.si(episode_id), sync_github_issue.si(episode_id)),
        summarize_episode.si(episode_id),
    )


def resolution_canvas(episode_id: int) -> Signature:
    return chain(record_resolution.si(episode_id), group(update_slack_root.si(episode_id), close_github_issue.si(episode_id)))


def _claim_and_launch(
    episode_ids: list[int], marker: InstrumentedAttribute, canvas: Callable[[int], Signature]
) -> list[int]:
    launched = []
    for episode_id in episode_ids:
        with database().session() as session:
            claimed = session.execute(
                update(Episode)
                .where(and_(Episode.id == episode_id, marker.is_(None)))
                .values({marker.key: func.now()})
                .returning(Episode.id)
            ).first()
            if claimed is None:
                continue
            canvas(episode_id).apply_async()
        launched.append(episode_id)
    return launched


@app.task(bind=True, base=OpsSeerTask, name="opsseer.start_episode_pipelines")
def start_episode_pipelines(self: OpsSeerTask, opened_episode_ids: list[int], resolved_episode_ids: list[int]) -> dict:
    """Start the enrichment pipeline of each opened episode and the resolution pipeline of each resolved one."""
    enriched = _claim_and_launch(opened_episode_ids, Episode.pipeline_started_at, enrichment_canvas)
    resolved = _claim_and_launch(resolved_episode_ids, Episode.resolution_started_at, resolution_canvas)
    logger.info("started enrichment for episodes %s and resolution for episodes %s", enriched, resolved)
    return {"enrichment": enriched, "resolution": resolved}


@app.task(bind=True, base=OpsSeerTask, name="opsseer.sweep_pending_pipelines")
def sweep_pending_pipelines(self: OpsSeerTask) -> dict:
    """Start pipelines the trigger stored but could not enqueue, for example during a broker outage."""
    with database().session() as session:
        unenriched = session.scalars(
            select(Episode.id)
            .where(Episode.firing_seen, Episode.pipeline_started_at.is_(None))
            .order_by(Episode.id)
            .limit(SWEEP_BATCH)
        ).all()
        unresolved = session.scalars(
            select(Episode.id)
            .where(Episode.status == RESOLVED, Episode.resolution_started_at.is_(None))
            .order_by(Episode.id)
            .limit(SWEEP_BATCH)
        ).all()
    if unenriched or unresolved:
        logger.info("sweep found %d episodes to enrich and %d to resolve", len(unenriched), len(unresolved))
    return start_episode_pipelines.run(list(unenriched), list(unresolved))
