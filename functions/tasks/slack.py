"""Slack notification steps: one root message per episode, replies in its thread, an in-place update on resolve.

The root message is posted once per episode (see functions.slack.posting) and shows the enrichment results.
Timeline entries written after it are posted to its thread by post_slack_thread_entries, which the Slack
tasks enqueue after their own commits and beat runs every OPSSEER_SLACK_THREAD_SYNC_INTERVAL_SECONDS for
entries other parts of OpsSeer write. Each entry is posted at most once through its SlackThreadPost row.
"""

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from functions.celery_app import app
from functions.models import (
    Episode,
    Incident,
    SlackMessage,
    SlackThreadPost,
    TimelineEntry,
)
from functions.settings import Settings, get_settings
from functions.slack.blocks import (
    entry_message,
    root_message,
    root_metadata,
    thread_metadata,
)
from functions.slack.client import (
    SlackClient,
    SlackRateLimited,
    SlackRejected,
    SlackUnavailable,
    get_slack_client,
)
from functions.slack.posting import (
    CLAIMED,
    FAILED,
    PENDING,
    PostInProgress,
    PostRequest,
    post_once,
)
from functions.slack.views import build_view, entry_dict
from functions.tasks.base import (
    OpsSeerTask,
    StepResult,
    TransientError,
    database,
    run_step,
)
from functions.timeline import add_entry, format_duration, get_entry, step_key

logger = logging.getLogger(__name__)

NOT_CONFIGURED_TITLE = "No Slack message sent: set OPSSEER_SLACK_BOT_TOKEN and OPSSEER_SLACK_CHANNEL to enable Slack"

# Entries that never go to the thread: the alert itself, Slack's own records, the channel-agnostic notify
# seam and the enrichment summary, which only repeats the root message.
THREAD_EXCLUDED_KINDS = ("alert", "slack", "slack_resolved", "slack_thread", "summary")
THREAD_BATCH = 20
SYNC_BATCH = 100


def _not_configured() -> StepResult:
    return StepResult(title=NOT_CONFIGURED_TITLE, status="not_configured", payload={"channel": "slack"})


def _message_row_id(incident_id: int, episode_id: int, channel: str) -> int:
    """Create the episode's SlackMessage row unless it exists, and return its id."""
    with database().session() as session:
        session.execute(
            pg_insert(SlackMessage)
            .values(incident_id=incident_id, episode_id=episode_id, channel=channel, state=PENDING, attempts=0)
            .on_conflict_do_nothing(index_elements=["episode_id"])
        )
        return session.scalar(select(SlackMessage.id).where(SlackMessage.episode_id == episode_id))


def _post_root(task: OpsSeerTask, session: Session, incident: Incident, episode: Episode) -> StepResult:
    settings = get_settings()
    client = get_slack_client(settings)
    if client is None:
        return _not_configured()

    view, newest_entry_id = build_view(session, episode, settings.portal_url)
    message = root_message(view)
    row_id = _message_row_id(incident.id, episode.id, settings.slack_channel)
    with database().session() as row_session:
        channel = row_session.get(SlackMessage, row_id).channel
    request = PostRequest(channel=channel, text=message.text, blocks=message.blocks, metadata=root_metadata(episode.id))
    try:
        posted = post_once(
            client,
            model=SlackMessage,
            row_id=row_id,
            request=request,
            task_id=task.request.id or f"local-{episode.id}",
            lease_seconds=settings.slack_post_lease_seconds,
            values={"posted_at": datetime.now(UTC), "last_entry_id": newest_entry_id},
        )
    except SlackRejected as exc:
        return StepResult(title=f"Slack message not posted: {exc}", status="failed", payload={"error": exc.error})
    return StepResult(
        title=f"Posted the incident to Slack channel {posted.channel}",
        payload={"channel": posted.channel, "ts": posted.ts, "blocks": len(message.blocks)},
    )


def update_root(client: SlackClient, session: Session, episode: Episode, settings: Settings) -> SlackMessage | None:
    """Re-render the episode's root message in place with chat.update; return its row, or None if never posted."""
    row = session.scalar(select(SlackMessage).where(SlackMessage.episode_id == episode.id))
    if row is None or row.ts is None:
        return None
    view, _ = build_view(session, episode, settings.portal_url)
    message = root_message(view)
    client.update_message(channel=row.channel, ts=row.ts, text=message.text, blocks=message.blocks)
    row.updated_at = datetime.now(UTC)
    return row


def _update_resolved(session: Session, incident: Incident, episode: Episode) -> StepResult:
    settings = get_settings()
    client = get_slack_client(settings)
    if client is None:
        return _not_configured()
    try:
        row = update_root(client, session, episode, settings)
    except SlackRejected as exc:
        return StepResult(title=f"Slack message not updated: {exc}", status="failed", payload={"error": exc.error})
    if row is None:
        root_entry = get_entry(session, key=step_key(episode.id, "slack"))
        if root_entry is None and episode.firing_seen:
            # The enrichment pipeline has not posted the root message yet; retry until it has.
            raise TransientError(f"the Slack root message of episode {episode.id} is not posted yet")
        return StepResult(title="No Slack message to update: the episode's root message was never posted", status="skipped")
    duration = format_duration(episode.duration_seconds or 0)
    return StepResult(
        title=f"Updated the Slack message to resolved after {duration}",
        payload={"channel": row.channel, "ts": row.ts, "duration_seconds": episode.duration_seconds},
    )


@app.task(bind=True, base=OpsSeerTask, name="opsseer.post_slack_root")
def post_slack_root(self: OpsSeerTask, episode_id: int) -> dict:
    """Post the episode's root message to Slack, once."""
    return run_step(self, episode_id=episode_id, step="slack", body=lambda s, i, e: _post_root(self, s, i, e))


@app.task(bind=True, base=OpsSeerTask, name="opsseer.update_slack_root")
def update_slack_root(self: OpsSeerTask, episode_id: int) -> dict:
    """Update the episode's root message in place to show it resolved, then post new entries to its thread."""
    result = run_step(self, episode_id=episode_id, step="slack_resolved", body=_update_resolved)
    if result["status"] == "ok":
        post_slack_thread_entries.apply_async((episode_id,))
    return result


def _pending_entries(session: Session, message: SlackMessage, lease_seconds: float) -> list[TimelineEntry]:
    """Return entries written after the root message that have no finished thread post, oldest first."""
    latest_episode_id = session.scalar(select(func.max(Episode.id)).where(Episode.incident_id == message.incident_id))
    episode_filter = TimelineEntry.episode_id == message.episode_id
    if latest_episode_id == message.episode_id:
        # Incident-level entries, such as "stale", belong to the thread of the incident's latest episode.
        episode_filter = or_(episode_filter, TimelineEntry.episode_id.is_(None))
    abandoned = datetime.now(UTC) - timedelta(seconds=lease_seconds)
    return list(
        session.scalars(
            select(TimelineEntry)
            .outerjoin(SlackThreadPost, SlackThreadPost.entry_id == TimelineEntry.id)
            .where(
                TimelineEntry.incident_id == message.incident_id,
                TimelineEntry.id > (message.last_entry_id or 0),
                episode_filter,
                TimelineEntry.kind.not_in(THREAD_EXCLUDED_KINDS),
                or_(
                    SlackThreadPost.id.is_(None),
                    SlackThreadPost.state == PENDING,
                    and_(SlackThreadPost.state == CLAIMED, SlackThreadPost.claimed_at < abandoned),
                ),
            )
            .order_by(TimelineEntry.id)
            .limit(THREAD_BATCH)
        ).all()
    )


def _thread_row_id(session: Session, entry_id: int, message_id: int) -> int:
    session.execute(
        pg_insert(SlackThreadPost)
        .values(entry_id=entry_id, message_id=message_id, state=PENDING)
        .on_conflict_do_nothing(index_elements=["entry_id"])
    )
    return session.scalar(select(SlackThreadPost.id).where(SlackThreadPost.entry_id == entry_id))


def _record_thread_failure(entry: dict, episode_id: int, row_id: int, attempts: int, error: str) -> None:
    logger.error("entry %s of episode %s not posted to the Slack thread after %d attempts: %s", entry["id"], episode_id, attempts, error)
    with database().session() as session:
        session.get(SlackThreadPost, row_id).state = FAILED
        add_entry(
            session,
            incident_id=session.get(Episode, episode_id).incident_id,
            episode_id=episode_id,
            key=f"entry:{entry['id']}:slack_thread",
            kind="slack_thread",
            status="failed",
            title=f"Slack thread reply for the {entry['kind']} entry failed after {attempts} attempts: {error}",
            payload={"entry_id": entry["id"], "error": error, "attempts": attempts},
        )


@app.task(bind=True, base=OpsSeerTask, name="opsseer.post_slack_thread_entries")
def post_slack_thread_entries(self: OpsSeerTask, episode_id: int) -> dict:
    """Post the episode's new timeline entries as replies in its root message's thread, each at most once."""
    settings = get_settings()
    client = get_slack_client(settings)
    if client is None:
        return {"episode_id": episode_id, "posted": 0}
    with database().session() as session:
        message = session.scalar(
            select(SlackMessage).where(SlackMessage.episode_id == episode_id, SlackMessage.ts.is_not(None))
        )
        if message is None:
            return {"episode_id": episode_id, "posted": 0}
        incident_url = f"{settings.portal_url.rstrip('/')}/incidents/{message.incident_id}"
        work = [
            (entry_dict(entry), _thread_row_id(session, entry.id, message.id))
            for entry in _pending_entries(session, message, settings.slack_post_lease_seconds)
        ]

    posted = 0
    for entry, row_id in work:
        rendered = entry_message(entry, incident_url)
        request = PostRequest(
            channel=message.channel,
            text=rendered.text,
            blocks=rendered.blocks,
            metadata=thread_metadata(entry["id"]),
            thread_ts=message.ts,
        )
        try:
            post_once(
                client,
                model=SlackThreadPost,
                row_id=row_id,
                request=request,
                task_id=self.request.id or f"local-{episode_id}",
                lease_seconds=settings.slack_post_lease_seconds,
            )
        except PostInProgress:
            logger.info("episode %s: entry %s is being posted by another task; leaving the rest to it", episode_id, entry["id"])
            break
        except SlackRejected as exc:
            _record_thread_failure(entry, episode_id, row_id, self.request.retries + 1, str(exc))
            continue
        except SlackUnavailable as exc:
            if self.request.retries < settings.task_max_retries:
                countdown = exc.retry_after if isinstance(exc, SlackRateLimited) else self.retry_countdown()
                logger.warning("episode %s: thread reply for entry %s failed, retrying in %.1f s: %s", episode_id, entry["id"], countdown, exc)
                raise self.retry(exc=exc, countdown=countdown, max_retries=settings.task_max_retries) from None
            _record_thread_failure(entry, episode_id, row_id, self.request.retries + 1, str(exc))
            continue
        posted += 1
    logger.info("episode %s: posted %d timeline entries to the Slack thread", episode_id, posted)
    return {"episode_id": episode_id, "posted": posted}


@app.task(bind=True, base=OpsSeerTask, name="opsseer.sync_slack_threads")
def sync_slack_threads(self: OpsSeerTask) -> list[int]:
    """Enqueue a thread post for every episode with a root message and timeline entries not yet in its thread."""
    settings = get_settings()
    if get_slack_client(settings) is None:
        return []
    with database().session() as session:
        messages = session.scalars(
            select(SlackMessage)
            .where(SlackMessage.ts.is_not(None))
            .where(
                select(TimelineEntry.id)
                .where(TimelineEntry.incident_id == SlackMessage.incident_id, TimelineEntry.id > SlackMessage.last_entry_id)
                .exists()
            )
            .order_by(SlackMessage.id.desc())
            .limit(SYNC_BATCH)
        ).all()
        episode_ids = [
            message.episode_id
            for message in messages
            if _pending_entries(session, message, settings.slack_post_lease_seconds)
        ]
    for episode_id in episode_ids:
        post_slack_thread_entries.apply_async((episode_id,))
    return episode_ids
