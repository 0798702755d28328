"""Shared task machinery: late acknowledgement, bounded retries with backoff, run records, failure entries.

After its last retry, or on an unexpected error, a pipeline step writes a failed timeline entry and returns
instead of raising, so the chord that follows it still runs. The one exception is an incident store that stays
unreachable through every retry: then nothing can be recorded, the step raises, and the pipeline stops there.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from celery import Task
from sqlalchemy import update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from functions.db import Database
from functions.models import Episode, FunctionRun, Incident
from functions.settings import get_settings
from functions.timeline import add_attachment, add_entry, get_entry, step_key

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying: a dependency timed out, refused the connection or returned HTTP 5xx."""

    # Seconds the dependency asked to wait (an HTTP Retry-After header); None means exponential backoff.
    retry_after: float | None = None


@dataclass
class StepResult:
    """The outcome of a step: one timeline entry and, optionally, one attachment."""

    title: str
    status: str = "ok"
    payload: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    attachment: tuple[str, bytes] | None = None


StepBody = Callable[[Session, Incident, Episode], StepResult]


@lru_cache(maxsize=1)
def database() -> Database:
    """Return the worker process's database, created on first use (after the prefork pool has forked)."""
    return Database(get_settings().database_url, pool_size=2, max_overflow=2)


class OpsSeerTask(Task):
    acks_late = True
    reject_on_worker_lost = True

    def retry_countdown(self) -> float:
        """Exponential backoff: base, 2 x base, 4 x base, ... capped at the configured maximum."""
        settings = get_settings()
        return min(settings.task_retry_backoff_seconds * 2**self.request.retries, settings.task_retry_backoff_max_seconds)


def start_run(incident_id: int, episode_id: int | None, task: Task) -> int:
    """Record the start of one attempt of a task and return the run id."""
    with database().session() as session:
        run = FunctionRun(
            task_id=task.request.id or "",
            task_name=task.name,
            incident_id=incident_id,
            episode_id=episode_id,
            attempt=task.request.retries,
            state="started",
        )
        session.add(run)
        session.flush()
        return run.id


def finish_run(run_id: int, state: str, error: str | None = None) -> None:
    """Record how an attempt ended: succeeded, retrying or failed."""
    with database().session() as session:
        session.execute(
            update(FunctionRun)
            .where(FunctionRun.id == run_id)
            .values(state=state, error=error, finished_at=datetime.now(UTC))
        )


def run_step(task: OpsSeerTask, *, episode_id: int, step: str, body: StepBody) -> dict[str, Any]:
    """Run one pipeline step for an episode, recording its entry, retries and failure.

    The entry's idempotency key makes a repeated run a no-op. An unreachable incident store is retried with
    the same backoff as other transient errors.
    """
    try:
        return _run_step(task, episode_id=episode_id, step=step, body=body)
    except (OperationalError, InterfaceError) as exc:
        retries = task.request.retries
        if retries < get_settings().task_max_retries:
            countdown = task.retry_countdown()
            logger.warning(
                "step %s for episode %s: incident store unavailable (attempt %d), retrying in %.1f s: %s",
                step, episode_id, retries + 1, countdown, exc.orig or exc,
            )
            raise task.retry(exc=exc, countdown=countdown, max_retries=get_settings().task_max_retries) from None
        logger.error("step %s for episode %s gave up: incident store unavailable after %d attempts", step, episode_id, retries + 1)
        raise


def pending_step(episode_id: int, step: str) -> int | dict[str, Any]:
    """Return the episode's incident id when the step still has to run, else the step's result dict.

    The step is done when its episode is gone or its entry is already recorded.
    """
    with database().session() as session:
        episode = session.get(Episode, episode_id)
        if episode is None:
            logger.info("step %s skipped: episode %s no longer exists", step, episode_id)
            return {"step": step, "status": "gone"}
        existing = get_entry(session, key=step_key(episode_id, step))
        if existing is not None:
            logger.info("step %s for episode %s already recorded, nothing to do", step, episode_id)
            return {"step": step, "status": existing.status}
        return episode.incident_id


def _run_step(task: OpsSeerTask, *, episode_id: int, step: str, body: StepBody) -> dict[str, Any]:
    key = step_key(episode_id, step)
    incident_id = pending_step(episode_id, step)
    if isinstance(incident_id, dict):
        return incident_id

    run_id = start_run(incident_id, episode_id, task)
    try:
        with database().session() as session:
            episode = session.get(Episode, episode_id)
            result = body(session, episode.incident, episode)
            payload = dict(result.payload)
            if result.attachment is not None:
                content_type, data = result.attachment
                payload["attachment_id"] = add_attachment(
                    session, incident_id=incident_id, episode_id=episode_id, key=key, content_type=content_type, data=data
                )
            add_entry(
                session,
                incident_id=incident_id,
                episode_id=episode_id,
                key=key,
                kind=step,
                title=result.title,
                status=result.status,
                payload=payload,
                model=result.model,
            )
    except TransientError as exc:
        if task.request.retries < get_settings().task_max_retries:
            countdown = exc.retry_after if exc.retry_after is not None else task.retry_countdown()
            logger.warning(
                "step %s for incident %s episode %s failed (attempt %d), retrying in %.1f s: %s",
                step, incident_id, episode_id, task.request.retries + 1, countdown, exc,
            )
            finish_run(run_id, "retrying", str(exc))
            raise task.retry(exc=exc, countdown=countdown, max_retries=get_settings().task_max_retries) from None
        return _record_failure(task, run_id, incident_id, episode_id, step, exc)
    except (OperationalError, InterfaceError):
        # The store itself is unreachable, so no failure entry could be written: run_step retries instead.
        raise
    except Exception as exc:
        # NOTE: a bug in a step must not leave the incident half-processed. It is logged with its traceback
        # and recorded in the timeline, and the rest of the pipeline carries on.
        logger.exception("step %s for incident %s episode %s failed unexpectedly", step, incident_id, episode_id)
        return _record_failure(task, run_id, incident_id, episode_id, step, exc)

    finish_run(run_id, "succeeded")
    logger.info("step %s for incident %s episode %s recorded: %s", step, incident_id, episode_id, result.status)
    return {"step": step, "status": result.status}


def _record_failure(
    task: OpsSeerTask, run_id: int, incident_id: int, episode_id: int, step: str, exc: Exception
) -> dict[str, Any]:
    attempts = task.request.retries + 1
    error = f"{type(exc).__name__}: {exc}"
    logger.error("step %s for incident %s episode %s gave up after %d attempts: %s", step, incident_id, episode_id, attempts, error)
    finish_run(run_id, "failed", error)
    with database().session() as session:
        add_entry(
            session,
            incident_id=incident_id,
            episode_id=episode_id,
            key=step_key(episode_id, step),
            kind=step,
            status="failed",
            title=f"{step.replace('_', ' ').capitalize()} failed after {attempts} attempts: {error}",
            payload={"error": error, "attempts": attempts},
        )
    return {"step": step, "status": "failed"}
