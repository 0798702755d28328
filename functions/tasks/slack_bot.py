"""Work behind the Slack bot: the Acknowledge, Resolve and Ask runbook buttons, mentions and /opsseer.

Acknowledge and Resolve are recorded on the episode (who and when) and in the timeline. Resolving from Slack
closes the episode as resolved by a person and starts the resolution pipeline. If Alertmanager keeps sending
the same firing alert (the same startsAt), the incident stays resolved, because correlation takes that as a
late copy of a closed episode. A firing alert with a later startsAt opens a new episode and pages again.
"""

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from functions.celery_app import app
from functions.model_services import (
    ModelServiceRejected,
    ModelServiceUnavailable,
    get_model_services,
)
from functions.models import (
    FIRING,
    RESOLVED,
    Episode,
    Incident,
    SlackMessage,
    SlackThreadPost,
    TimelineEntry,
)
from functions.settings import get_settings
from functions.slack.blocks import answer_text, escape, link
from functions.slack.client import (
    SlackRateLimited,
    SlackRejected,
    SlackUnavailable,
    get_slack_client,
    respond,
)
from functions.slack.posting import POSTED
from functions.tasks.base import OpsSeerTask, database
from functions.tasks.slack import post_slack_thread_entries, update_root
from functions.timeline import add_entry, format_duration

logger = logging.getLogger(__name__)

NOT_CONFIGURED_ANSWER = "Runbook QA is not configured: set OPSSEER_MODELS_URL to the model gateway's URL."
STATUS_LIMIT = 15


def _who(user_name: str, user_id: str) -> str:
    return f"{user_name} ({user_id})" if user_id else user_name


def acknowledge(episode_id: int, *, user_name: str, user_id: str, now: datetime) -> str:
    """Record that a person acknowledged the episode; return the reply for that person."""
    with database().session() as session:
        episode = session.get(Episode, episode_id, with_for_update=True)
        if episode is None:
            return f"Episode {episode_id} no longer exists."
        if episode.status == RESOLVED:
            return f"Episode {episode.sequence} of incident {episode.incident_id} is already resolved."
        if episode.acknowledged_at is not None:
            return f"Already acknowledged by {escape(episode.acknowledged_by)} at {episode.acknowledged_at:%H:%M:%S} UTC."
        who = _who(user_name, user_id)
        episode.acknowledged_at, episode.acknowledged_by = now, who
        add_entry(
            session,
            incident_id=episode.incident_id,
            episode_id=episode.id,
            key=f"episode:{episode.id}:acknowledged",
            kind="acknowledged",
            title=f"Acknowledged by {who} in Slack",
            payload={"user_id": user_id, "user_name": user_name, "at": now.isoformat(), "source": "slack"},
            occurred_at=now,
        )
    logger.info("episode %s acknowledged by Slack user %s", episode_id, user_id)
    return f"You acknowledged incident {episode.incident_id}."


def resolve(episode_id: int, *, user_name: str, user_id: str, now: datetime) -> tuple[str, bool]:
    """Close the episode as resolved by a person; return the reply and whether this call resolved it."""
    with database().session() as session:
        found = session.get(Episode, episode_id)
        if found is None:
            return f"Episode {episode_id} no longer exists.", False
        # The trigger locks incidents before episodes; taking the locks in the same order avoids deadlocks.
        incident = session.get(Incident, found.incident_id, with_for_update=True)
        episode = session.get(Episode, episode_id, with_for_update=True, populate_existing=True)
        if episode.status == RESOLVED:
            return f"Episode {episode.sequence} of incident {incident.id} is already resolved.", False
        who = _who(user_name, user_id)
        ended_at = max(now, episode.started_at)
        episode.status, episode.ended_at, episode.resolved_by = RESOLVED, ended_at, who
        if episode.sequence >= incident.episode_count:
            incident.status, incident.resolved_at = RESOLVED, ended_at
        add_entry(
            session,
            incident_id=incident.id,
            episode_id=episode.id,
            key=f"episode:{episode.id}:resolved_by_person",
            kind="resolved_by_person",
            title=f"Resolved by {who} in Slack after {format_duration((ended_at - episode.started_at).total_seconds())}",
            payload={"user_id": user_id, "user_name": user_name, "at": now.isoformat(), "source": "slack"},
            occurred_at=now,
        )
    logger.info("episode %s resolved by Slack user %s", episode_id, user_id)
    return f"You resolved incident {incident.id}.", True


def _respond(response_url: str | None, text: str) -> None:
    if not response_url:
        return
    try:
        respond(response_url, text=text, timeout=get_settings().slack_timeout_seconds)
    except (SlackRejected, SlackUnavailable) as exc:
        # The reply is a courtesy to the person who clicked; the recorded action stands without it.
        logger.warning("reply through response_url failed: %s", exc)


@app.task(bind=True, base=OpsSeerTask, name="opsseer.refresh_slack_root")
def refresh_slack_root(self: OpsSeerTask, episode_id: int) -> dict:
    """Re-render the episode's root message in place, then post new timeline entries to its thread."""
    settings = get_settings()
    client = get_slack_client(settings)
    if client is None:
        return {"episode_id": episode_id, "updated": False}
    try:
        with database().session() as session:
            episode = session.get(Episode, episode_id)
            updated = episode is not None and update_root(client, session, episode, settings) is not None
    except SlackUnavailable as exc:
        countdown = exc.retry_after if isinstance(exc, SlackRateLimited) else self.retry_countdown()
        logger.warning("episode %s: root message update failed, retrying in %.1f s: %s", episode_id, countdown, exc)
        raise self.retry(exc=exc, countdown=countdown, max_retries=settings.task_max_retries) from None
    post_slack_thread_entries.apply_async((episode_id,))
    return {"episode_id": episode_id, "updated": updated}


@app.task(bind=True, base=OpsSeerTask, name="opsseer.handle_slack_action")
def handle_slack_action(
    self: OpsSeerTask, *, action: str, episode_id: int, user_id: str, user_name: str, response_url: str | None
) -> dict:
    """Apply a button press on a root message and reply to the person who pressed it."""
    now = datetime.now(UTC)
    if action == "acknowledge":
        reply = acknowledge(episode_id, user_name=user_name, user_id=user_id, now=now)
        refresh_slack_root.apply_async((episode_id,))
    elif action == "resolve":
        reply, resolved = resolve(episode_id, user_name=user_name, user_id=user_id, now=now)
        if resolved:
            from functions.tasks.pipelines import start_episode_pipelines

            # The resolution pipeline records the duration and updates the root message to resolved.
            start_episode_pipelines.apply_async(args=[[], [episode_id]])
    elif action == "ask":
        with database().session() as session:
            episode = session.get(Episode, episode_id)
            if episode is None:
                _respond(response_url, f"Episode {episode_id} no longer exists.")
                return {"action": action, "episode_id": episode_id}
            incident = episode.incident
            question = f"{incident.alertname}: {incident.title}" if incident.title else incident.alertname
            message = session.scalar(select(SlackMessage).where(SlackMessage.episode_id == episode_id))
        answer_slack_question.apply_async(
            kwargs={
                "question": question,
                "channel": message.channel if message else "",
                "thread_ts": message.ts if message else "",
                "user_id": user_id,
                "delivery_key": f"ask:{self.request.id}",
            }
        )
        reply = "Asking the runbooks; the answer will appear in the incident's thread."
    else:
        reply = f"Unknown action {escape(action)}."
    _respond(response_url, reply)
    return {"action": action, "episode_id": episode_id, "reply": reply}


def _ask(task: OpsSeerTask, question: str) -> tuple[str, dict[str, Any] | None]:
    """Return the reply text and, when the gateway answered, the answer."""
    services = get_model_services()
    if services is None:
        return NOT_CONFIGURED_ANSWER, None
    try:
        answer = services.ask(question)
    except ModelServiceRejected as exc:
        return f"Runbook QA could not answer: {escape(exc)}", None
    except ModelServiceUnavailable as exc:
        if task.request.retries < get_settings().task_max_retries:
            raise task.retry(exc=exc, countdown=task.retry_countdown(), max_retries=get_settings().task_max_retries) from None
        return f"Runbook QA is unavailable: {escape(exc)}", None
    return answer_text(answer, answer.get("model")), answer


def _episode_of_thread(channel: str, thread_ts: str) -> SlackMessage | None:
    with database().session() as session:
        return session.scalar(select(SlackMessage).where(SlackMessage.channel == channel, SlackMessage.ts == thread_ts))


@app.task(bind=True, base=OpsSeerTask, name="opsseer.answer_slack_question")
def answer_slack_question(
    self: OpsSeerTask, *, question: str, channel: str, thread_ts: str, user_id: str, delivery_key: str
) -> dict:
    """Answer a question from the runbooks in the thread it was asked in, recording answers in incident threads."""
    settings = get_settings()
    client = get_slack_client(settings)
    if not question:
        text = "Ask me a question about an alert, for example `@OpsSeer how do I reduce the p95 latency?`"
        answer = None
    else:
        text, answer = _ask(self, question)
    if client is None or not channel:
        logger.warning("question %s not answered in Slack: Slack is not configured or the channel is unknown", delivery_key)
        return {"answered": False}

    try:
        posted = client.post_message(channel=channel, text=text, thread_ts=thread_ts or None)
    except SlackUnavailable as exc:
        if exc.maybe_delivered or self.request.retries >= settings.task_max_retries:
            logger.error("answer to %s may not have been posted, not retrying to avoid a duplicate: %s", delivery_key, exc)
            return {"answered": False}
        countdown = exc.retry_after if isinstance(exc, SlackRateLimited) else self.retry_countdown()
        raise self.retry(exc=exc, countdown=countdown, max_retries=settings.task_max_retries) from None
    except SlackRejected as exc:
        logger.error("answer to %s rejected by Slack: %s", delivery_key, exc)
        return {"answered": False}

    message = _episode_of_thread(channel, thread_ts) if thread_ts else None
    if message is not None and answer is not None:
        # An answer in an incident's thread is an AI result of that incident, so it goes to its timeline too,
        # already marked as posted so the thread sync does not post it again.
        with database().session() as session:
            add_entry(
                session,
                incident_id=message.incident_id,
                episode_id=message.episode_id,
                key=f"slack:{delivery_key}:answer",
                kind="runbook_answer",
                title=f"Runbook answer for {question[:200]!r} asked in Slack by {user_id}",
                payload={**answer, "question": question, "asked_by": user_id},
                model=answer.get("model"),
            )
            entry_id = session.scalar(select(TimelineEntry.id).where(TimelineEntry.idempotency_key == f"slack:{delivery_key}:answer"))
            session.execute(
                pg_insert(SlackThreadPost)
                .values(entry_id=entry_id, message_id=message.id, ts=posted.ts, state=POSTED)
                .on_conflict_do_nothing(index_elements=["entry_id"])
            )
    return {"answered": True, "ts": posted.ts}


def _status_text(portal_url: str) -> str:
    with database().session() as session:
        incidents = session.scalars(
            select(Incident).where(Incident.status == FIRING).order_by(Incident.last_started_at.desc()).limit(STATUS_LIMIT)
        ).all()
        if not incidents:
            return "No incident is firing."
        lines = [f"*{len(incidents)} firing incident(s)*" + (" (newest first, first 15)" if len(incidents) == STATUS_LIMIT else "")]
        for incident in incidents:
            url = f"{portal_url.rstrip('/')}/incidents/{incident.id}"
            lines.append(f"• {link(url, f'#{incident.id}')} {escape(incident.severity)} {escape(incident.title or incident.alertname)}")
    return "\n".join(lines)


def _incident_text(incident_id: int, portal_url: str) -> str:
    with database().session() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return f"Incident {incident_id} not found. `/opsseer status` lists the firing incidents."
        latest = incident.episodes[-1] if incident.episodes else None
        url = f"{portal_url.rstrip('/')}/incidents/{incident.id}"
        lines = [
            f"*Incident {incident.id}*: {escape(incident.title or incident.alertname)} ({link(url, 'portal')})",
            f"Status: {incident.status}, severity {escape(incident.severity)}, {incident.episode_count} episode(s)",
        ]
        if latest is not None:
            lines.append(f"Latest episode {latest.sequence} started {latest.started_at:%Y-%m-%d %H:%M:%S} UTC")
            if latest.acknowledged_by:
                lines.append(f"Acknowledged by {escape(latest.acknowledged_by)} at {latest.acknowledged_at:%H:%M:%S} UTC")
            if latest.resolved_by:
                lines.append(f"Resolved by {escape(latest.resolved_by)}")
    return "\n".join(lines)


@app.task(bind=True, base=OpsSeerTask, name="opsseer.answer_slack_command")
def answer_slack_command(self: OpsSeerTask, *, subcommand: str, argument: str, response_url: str, user_id: str) -> dict:
    """Answer `/opsseer status|incident|ask` through the command's response_url."""
    settings = get_settings()
    if subcommand == "status":
        text = _status_text(settings.portal_url)
    elif subcommand == "incident":
        text = _incident_text(int(argument), settings.portal_url)
    else:
        text, _ = _ask(self, argument)
    try:
        respond(response_url, text=text, timeout=settings.slack_timeout_seconds)
    except SlackUnavailable as exc:
        if exc.maybe_delivered or self.request.retries >= settings.task_max_retries:
            logger.error("reply to /opsseer %s by %s may not have been delivered: %s", subcommand, user_id, exc)
            return {"answered": False}
        countdown = exc.retry_after if isinstance(exc, SlackRateLimited) else self.retry_countdown()
        raise self.retry(exc=exc, countdown=countdown, max_retries=settings.task_max_retries) from None
    except SlackRejected as exc:
        logger.error("reply to /opsseer %s by %s rejected: %s", subcommand, user_id, exc)
        return {"answered": False}
    return {"answered": True, "text": text}
