"""GitHub steps: open the episode's issue on fire, close it on resolve, and post later entries as comments.

Each step writes one timeline entry of kind "github": ok with the issue URL, not_configured without a
token and repository, skipped, or failed with the fix. Rate limits are retried after the wait that
GitHub's response names, capped by OPSSEER_GITHUB_RATE_LIMIT_MAX_WAIT_SECONDS. Outages back off like
other steps. Permission and not-found errors fail at once, because retrying cannot fix a token or a
repository name.
"""

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError

from functions.celery_app import app
from functions.github.client import GitHubClient
from functions.github.errors import GitHubError, RateLimited
from functions.github.issues import close_issue, open_issue, post_comment, queue_comments
from functions.models import TimelineEntry
from functions.settings import Settings, get_settings
from functions.tasks.base import OpsSeerTask, StepResult, TransientError, database, finish_run, pending_step, start_run
from functions.timeline import add_entry, step_key

logger = logging.getLogger(__name__)

KIND = "github"
Action = Callable[[GitHubClient, Settings], StepResult]


@lru_cache(maxsize=1)
def github_client() -> GitHubClient:
    """Return the worker process's client, so PyGithub's pause between writes spans the process's tasks."""
    return GitHubClient.from_settings(get_settings())


def _retry(task: OpsSeerTask, exc: Exception, *, countdown: float, what: str, ids: str):
    logger.warning("%s for %s: %s (attempt %d), retrying in %.1f s", what, ids, exc, task.request.retries + 1, countdown)
    return task.retry(exc=exc, countdown=countdown, max_retries=task.request.retries + 1)


def retry_or_raise(task: OpsSeerTask, exc: Exception, *, what: str, ids: str) -> None:
    """Schedule a Celery retry for a rate limit or a transient error while retries remain; return when none do."""
    settings = get_settings()
    retries = task.request.retries
    if isinstance(exc, RateLimited) and retries < settings.github_rate_limit_max_retries:
        countdown = min(exc.retry_after, settings.github_rate_limit_max_wait_seconds)
        raise _retry(task, exc, countdown=countdown, what=what, ids=ids) from None
    if isinstance(exc, TransientError | OperationalError | InterfaceError) and retries < settings.task_max_retries:
        raise _retry(task, exc, countdown=task.retry_countdown(), what=what, ids=ids) from None


def run_github_step(task: OpsSeerTask, *, episode_id: int, step: str, action: Action) -> dict[str, Any]:
    """Run a GitHub step for an episode and record its "github" entry under the step's key."""
    key = step_key(episode_id, step)
    incident_id = pending_step(episode_id, step)
    if isinstance(incident_id, dict):
        return incident_id

    settings = get_settings()
    if not settings.github_configured:
        result = StepResult(
            title="GitHub issue not synced: set OPSSEER_GITHUB_TOKEN and OPSSEER_GITHUB_REPOSITORY to enable it",
            status="not_configured",
            payload={"step": step},
        )
        return _record(incident_id, episode_id, key, step, result)

    run_id = start_run(incident_id, episode_id, task)
    ids = f"incident {incident_id} episode {episode_id}"
    try:
        result = action(github_client(), settings)
    except (GitHubError, TransientError, OperationalError, InterfaceError) as exc:
        finish_run(run_id, "retrying", str(exc))
        retry_or_raise(task, exc, what=f"step {step}", ids=ids)
        attempts = task.request.retries + 1
        logger.error("step %s for %s failed after %d attempts: %s", step, ids, attempts, exc)
        finish_run(run_id, "failed", str(exc))
        failed = StepResult(
            title=f"GitHub {step.replace('_', ' ')} failed after {attempts} attempts: {exc}",
            status="failed",
            payload={"error": f"{type(exc).__name__}: {exc}", "attempts": attempts, "step": step},
        )
        return _record(incident_id, episode_id, key, step, failed)
    except Exception as exc:
        # NOTE: a bug here must not stop the pipeline: it is logged with its traceback and recorded.
        logger.exception("step %s for %s failed unexpectedly", step, ids)
        finish_run(run_id, "failed", str(exc))
        failed = StepResult(title=f"GitHub {step.replace('_', ' ')} failed: {type(exc).__name__}: {exc}", status="failed", payload={"error": str(exc), "step": step})
        return _record(incident_id, episode_id, key, step, failed)

    finish_run(run_id, "succeeded")
    return _record(incident_id, episode_id, key, step, result)


def _record(incident_id: int, episode_id: int, key: str, step: str, result: StepResult) -> dict[str, Any]:
    with database().session() as session:
        add_entry(
            session,
            incident_id=incident_id,
            episode_id=episode_id,
            key=key,
            kind=KIND,
            title=result.title,
            status=result.status,
            payload={**result.payload, "step": step},
        )
    logger.info("step %s for incident %s episode %s recorded: %s", step, incident_id, episode_id, result.status)
    return {"step": step, "status": result.status, **({"url": result.payload["url"]} if "url" in result.payload else {})}


@app.task(bind=True, base=OpsSeerTask, name="opsseer.sync_github_issue")
def sync_github_issue(self: OpsSeerTask, episode_id: int) -> dict:
    """Open the episode's GitHub issue, or reopen the incident's last one (OPSSEER_GITHUB_REFIRE)."""
    return run_github_step(
        self, episode_id=episode_id, step="github", action=lambda client, settings: open_issue(client, settings, episode_id=episode_id)
    )


@app.task(bind=True, base=OpsSeerTask, name="opsseer.close_github_issue")
def close_github_issue(self: OpsSeerTask, episode_id: int) -> dict:
    """Close the episode's GitHub issue with a comment that gives the episode's duration."""
    return run_github_step(
        self, episode_id=episode_id, step="github_resolved", action=lambda client, settings: close_issue(client, settings, episode_id=episode_id)
    )


@app.task(bind=True, base=OpsSeerTask, name="opsseer.comment_github_issue")
def comment_github_issue(self: OpsSeerTask, entry_id: int) -> dict:
    """Post one queued timeline entry as a comment on its episode's issue."""
    settings = get_settings()
    if not settings.github_configured:
        return {"entry_id": entry_id, "status": "not_configured"}
    try:
        comment = post_comment(github_client(), settings, entry_id=entry_id)
    except (GitHubError, TransientError, OperationalError, InterfaceError) as exc:
        retry_or_raise(self, exc, what="comment", ids=f"entry {entry_id}")
        logger.error("comment for entry %s failed after %d attempts: %s", entry_id, self.request.retries + 1, exc)
        _record_comment_failure(entry_id, exc, self.request.retries + 1)
        return {"entry_id": entry_id, "status": "failed"}
    if comment is None:
        return {"entry_id": entry_id, "status": "gone"}
    return {"entry_id": entry_id, "status": "ok", "url": comment.html_url}


def _record_comment_failure(entry_id: int, exc: Exception, attempts: int) -> None:
    with database().session() as session:
        entry = session.get(TimelineEntry, entry_id)
        if entry is None:
            return
        add_entry(
            session,
            incident_id=entry.incident_id,
            episode_id=entry.episode_id,
            key=f"entry:{entry_id}:github_comment",
            kind=KIND,
            status="failed",
            title=f"GitHub comment for the {entry.kind.replace('_', ' ')} entry failed after {attempts} attempts: {exc}",
            payload={"error": f"{type(exc).__name__}: {exc}", "entry_id": entry_id, "attempts": attempts},
        )


@app.task(bind=True, base=OpsSeerTask, name="opsseer.sync_github_comments")
def sync_github_comments(self: OpsSeerTask) -> list[int]:
    """Queue a comment for each significant entry written after its episode's issue (run by beat)."""
    if not get_settings().github_configured:
        return []
    queued = queue_comments()
    for entry_id in queued:
        comment_github_issue.delay(entry_id)
    if queued:
        logger.info("queued GitHub comments for entries %s", queued)
    return queued
