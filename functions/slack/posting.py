"""Post a Slack message at most once per row, across retries, repeated runs and concurrent workers.

Each post goes through a row (SlackMessage for a root message, SlackThreadPost for a thread reply) that is
claimed and committed before the HTTP call:
1. Lock the row. If it has a ts, the message exists and nothing is posted.
2. If another task claimed it less than OPSSEER_SLACK_POST_LEASE_SECONDS ago, that post is in flight:
   raise PostInProgress, so the caller retries later or leaves the work to that task.
3. Claim it (state "claimed", claimed_by = task id, claimed_at = now) and commit.
4. If the row was already claimed, an earlier attempt's outcome is unknown (it timed out, got HTTP 5xx or its
   worker died). Look for that post in the channel history by the key in its message metadata, and record it
   instead of posting again.
5. Post with the key in the metadata, then record the ts.
A call that certainly did not post (HTTP 429, a refused connection, {"ok": false}) releases the claim.

NOTE: one window remains. If the history lookup in step 4 runs before Slack lists the earlier message, or the
lookup itself fails (for example without the channels:history scope), the message is posted a second time.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from functions.models import SlackMessage, SlackThreadPost
from functions.slack.client import (
    PostedMessage,
    SlackClient,
    SlackRejected,
    SlackUnavailable,
)
from functions.tasks.base import TransientError, database

logger = logging.getLogger(__name__)

PENDING = "pending"
CLAIMED = "claimed"
POSTED = "posted"
FAILED = "failed"

# How far before an earlier claim the history lookup starts, to allow for clock skew between hosts.
HISTORY_MARGIN_SECONDS = 60

PostRow = type[SlackMessage] | type[SlackThreadPost]


class PostInProgress(TransientError):
    """Another task claimed this post moments ago and may still be sending it."""


@dataclass(frozen=True)
class PostRequest:
    channel: str
    text: str
    blocks: list[dict]
    metadata: dict[str, Any]
    thread_ts: str | None = None

    @property
    def key(self) -> str:
        return self.metadata["event_payload"]["key"]


def post_once(
    client: SlackClient,
    *,
    model: PostRow,
    row_id: int,
    request: PostRequest,
    task_id: str,
    lease_seconds: float,
    values: dict[str, Any] | None = None,
) -> PostedMessage:
    """Post the request unless the row already records a post; store the ts and `values` on the row."""
    now = datetime.now(UTC)
    with database().session() as session:
        row = session.get(model, row_id, with_for_update=True)
        if row.ts is not None:
            return PostedMessage(channel=getattr(row, "channel", request.channel), ts=row.ts)
        fresh = row.claimed_at is not None and now - row.claimed_at < timedelta(seconds=lease_seconds)
        if row.state == CLAIMED and row.claimed_by != task_id and fresh:
            raise PostInProgress(f"{request.key} is being posted by task {row.claimed_by}; retry after its lease")
        earlier_claim = row.claimed_at if row.state == CLAIMED else None
        row.state, row.claimed_by, row.claimed_at = CLAIMED, task_id, now
        if isinstance(row, SlackMessage):
            row.attempts += 1

    if earlier_claim is not None:
        ts = _find_earlier_post(client, request, since=earlier_claim)
        if ts is not None:
            logger.info("%s: found the post of an earlier attempt (ts %s); not posting again", request.key, ts)
            _record(model, row_id, PostedMessage(request.channel, ts), values)
            return PostedMessage(request.channel, ts)

    try:
        posted = client.post_message(
            channel=request.channel,
            text=request.text,
            blocks=request.blocks,
            thread_ts=request.thread_ts,
            metadata=request.metadata,
        )
    except SlackUnavailable as exc:
        if not exc.maybe_delivered:
            _release(model, row_id)
        raise
    except SlackRejected:
        _release(model, row_id)
        raise
    _record(model, row_id, posted, values)
    return posted


def _find_earlier_post(client: SlackClient, request: PostRequest, *, since: datetime) -> str | None:
    oldest = since.timestamp() - HISTORY_MARGIN_SECONDS
    try:
        return client.find_message(
            channel=request.channel,
            event_type=request.metadata["event_type"],
            key=request.key,
            oldest=oldest,
            thread_ts=request.thread_ts,
        )
    except SlackRejected as exc:
        logger.warning("%s: cannot check the channel history for an earlier post, posting anyway: %s", request.key, exc)
        return None


def _record(model: PostRow, row_id: int, posted: PostedMessage, values: dict[str, Any] | None) -> None:
    changes = {"ts": posted.ts, "state": POSTED, **(values or {})}
    if model is SlackMessage:
        changes["channel"] = posted.channel
    with database().session() as session:
        session.execute(update(model).where(model.id == row_id).values(**changes))


def _release(model: PostRow, row_id: int) -> None:
    with database().session() as session:
        session.execute(update(model).where(model.id == row_id, model.ts.is_(None)).values(state=PENDING, claimed_by=None))
