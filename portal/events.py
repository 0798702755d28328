"""The live event stream of an incident page: Server-Sent Events fed by polling the incident store.

Events:
- `incident`: the incident's live state (see `serialize_incident_state`). It is sent once on connect and again
  whenever the status, stale marker, resolve time, current episode start or episode count changes. It has no SSE id.
- `timeline`: one new timeline entry (see `serialize_timeline_entry`), with the entry id as the SSE id, so a
  browser that reconnects sends it back as Last-Event-ID and receives only later entries.

NOTE: each open stream runs up to three small indexed queries per poll interval. PostgreSQL LISTEN/NOTIFY, sent by the
writers of timeline entries and incident changes, could replace the polling once many pages stay open at once.
"""

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sse_starlette import EventSourceResponse, ServerSentEvent

from functions.db import Database
from functions.errors import error_response
from portal import service
from portal.api import MAX_ID, IncidentId, incident_not_found, store_unavailable
from portal.serializers import serialize_incident_state, serialize_timeline_entry

logger = logging.getLogger(__name__)

POLL_INTERVAL_SECONDS = 1.0
# Reconnection delay, sent with the first event, that the browser waits after the stream ends.
RECONNECT_DELAY_MS = 3000
# Entries sent per poll; a longer backlog is sent over the following polls without waiting.
MAX_ENTRIES_PER_POLL = 200
# A client that stops reading for this long is dropped instead of holding the stream open.
SEND_TIMEOUT_SECONDS = 30.0


@dataclass
class PollResult:
    """The incident state and unsent timeline entries read by one poll. state is None once the incident is deleted."""

    state: dict[str, Any] | None
    entries: list[dict[str, Any]] = field(default_factory=list)
    more_pending: bool = False


def poll_incident(session: Session, *, incident_id: int, after_id: int, sent_ids: frozenset[int]) -> PollResult:
    """Read the incident's state and the timeline entries above after_id that are not in sent_ids."""
    incident = service.get_incident(session, incident_id=incident_id)
    if incident is None:
        return PollResult(state=None)
    state = serialize_incident_state(incident, now=datetime.now(UTC))

    # NOTE: ids come from a sequence, and a transaction that took a lower id can commit after one that took a
    # higher id. Every id above the client's starting point is therefore compared with the ids already sent,
    # instead of moving a single cursor past entries that may still appear.
    candidate_ids = service.list_timeline_ids(session, incident_id=incident_id, after_id=after_id)
    unsent = [entry_id for entry_id in candidate_ids if entry_id not in sent_ids]
    batch = unsent[:MAX_ENTRIES_PER_POLL]
    entries = service.list_timeline_by_ids(session, ids=batch) if batch else []
    return PollResult(
        state=state,
        entries=[serialize_timeline_entry(entry) for entry in entries],
        more_pending=len(unsent) > len(batch),
    )


def _state_change_key(state: dict[str, Any]) -> tuple:
    # The duration grows on every poll, so it is left out: the page computes it locally between events.
    fields = ("status", "stale_since", "resolved_at", "last_started_at", "episode_count")
    return tuple(state[name] for name in fields)


def _encode(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


async def stream_incident_events(
    database: Database, *, incident_id: int, after_id: int
) -> AsyncIterator[ServerSentEvent]:
    """Yield the incident's events until the incident is deleted, the store fails or the task is cancelled.

    sse-starlette cancels this generator when the client disconnects.
    """
    sent_ids: set[int] = set()
    last_state_key: tuple | None = None
    retry: int | None = RECONNECT_DELAY_MS
    logger.info("event stream for incident %s opened after entry %s", incident_id, after_id)
    try:
        while True:
            try:
                result = await service.run_in_session(
                    database, poll_incident, incident_id=incident_id, after_id=after_id, sent_ids=frozenset(sent_ids)
                )
            except DBAPIError as exc:
                # Ending the stream makes the browser reconnect after RECONNECT_DELAY_MS with its Last-Event-ID.
                logger.warning(
                    "event stream for incident %s ended: incident store unavailable: %s", incident_id, exc.orig or exc
                )
                return
            if result.state is None:
                logger.info("event stream for incident %s ended: the incident was deleted", incident_id)
                return

            state_key = _state_change_key(result.state)
            if state_key != last_state_key:
                yield ServerSentEvent(_encode(result.state), event="incident", retry=retry)
                last_state_key, retry = state_key, None
            for entry in result.entries:
                yield ServerSentEvent(_encode(entry), event="timeline", id=str(entry["id"]), retry=retry)
                sent_ids.add(entry["id"])
                retry = None

            if not result.more_pending:
                await anyio.sleep(POLL_INTERVAL_SECONDS)
    finally:
        logger.info("event stream for incident %s closed after sending %d entries", incident_id, len(sent_ids))


def _incident_exists(session: Session, *, incident_id: int) -> bool:
    return service.get_incident(session, incident_id=incident_id) is not None


def create_events_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["portal"])

    @router.get("/incidents/{incident_id}/events", response_model=None)
    async def incident_events(
        request: Request,
        incident_id: int = IncidentId,
        after_id: int = Query(0, ge=0, le=MAX_ID, description="Send only timeline entries with a larger id."),
        last_event_id: str | None = Header(None, description="Set by the browser when it reconnects."),
    ) -> Response:
        """Stream the incident's new timeline entries and status changes as Server-Sent Events."""
        if last_event_id is not None and last_event_id.strip():
            value = last_event_id.strip()
            if not value.isascii() or not value.isdigit() or int(value) > MAX_ID:
                return error_response(
                    422,
                    "invalid_request",
                    f"invalid header.last-event-id: {value[:40]!r} is not a timeline entry id",
                    field="header.last-event-id",
                )
            # The browser's Last-Event-ID is newer than the after_id in the URL it first opened.
            after_id = max(after_id, int(value))

        database = request.app.state.database
        try:
            exists = await service.run_in_session(database, _incident_exists, incident_id=incident_id)
        except DBAPIError as exc:
            return store_unavailable(exc, f"incident {incident_id}")
        if not exists:
            return incident_not_found(incident_id)

        events = stream_incident_events(database, incident_id=incident_id, after_id=after_id)
        return EventSourceResponse(events, send_timeout=SEND_TIMEOUT_SECONDS)

    return router
