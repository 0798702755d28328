"""The portal's JSON read API: incidents, their timelines and their attachments."""

import logging
import re
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from functions.errors import error_response
from portal import service
from portal.serializers import serialize_incident, serialize_incident_summary, serialize_timeline_entry

logger = logging.getLogger(__name__)

# Ids are PostgreSQL bigint, so a larger number is rejected as invalid instead of failing inside the query.
MAX_ID = 2**63 - 1
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_TIMELINE_PAGE_SIZE = 1000

# Image types a browser renders without running scripts. Anything else, SVG included, is served as a download.
INLINE_CONTENT_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
CONTENT_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")
ATTACHMENT_MAX_AGE_SECONDS = 86400

IncidentId = Path(ge=1, le=MAX_ID, description="Incident id.")
StatusFilter = Literal["firing", "resolved"]


def incident_not_found(incident_id: int) -> JSONResponse:
    return error_response(404, "not_found", f"incident {incident_id} not found")


def store_unavailable(exc: DBAPIError, resource: str) -> JSONResponse:
    logger.error("incident store unavailable while reading %s: %s", resource, exc.orig or exc)
    return error_response(
        503,
        "store_unavailable",
        "the incident store is unavailable; retry in a few seconds",
        headers={"Retry-After": "5"},
    )


def _list_incidents(session: Session, *, status: str | None, limit: int, offset: int) -> dict[str, Any]:
    incidents, total = service.list_incidents(session, status=status, limit=limit, offset=offset)
    now = datetime.now(UTC)
    return {
        "incidents": [serialize_incident_summary(incident, now=now) for incident in incidents],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


def _get_incident(session: Session, *, incident_id: int) -> dict[str, Any] | None:
    incident = service.get_incident(session, incident_id=incident_id, with_episodes=True)
    if incident is None:
        return None
    return serialize_incident(incident, now=datetime.now(UTC))


def _get_timeline(session: Session, *, incident_id: int, after_id: int, limit: int) -> list[dict[str, Any]] | None:
    if service.get_incident(session, incident_id=incident_id) is None:
        return None
    entries = service.list_timeline(session, incident_id=incident_id, after_id=after_id, limit=limit)
    return [serialize_timeline_entry(entry) for entry in entries]


def _get_attachment(session: Session, *, attachment_id: int) -> tuple[str, bytes] | None:
    attachment = service.get_attachment(session, attachment_id=attachment_id)
    if attachment is None:
        return None
    return attachment.content_type, attachment.data


def attachment_response(attachment_id: int, content_type: str, data: bytes) -> Response:
    """Serve attachment bytes so that no stored content type can run script on the portal's origin."""
    media_type = content_type.strip().lower()
    if not CONTENT_TYPE_PATTERN.match(media_type):
        logger.warning(
            "attachment %s has an invalid content type %r, serving it as octet-stream", attachment_id, content_type
        )
        media_type = "application/octet-stream"
    disposition = "inline" if media_type in INLINE_CONTENT_TYPES else "attachment"

    headers = {
        "Content-Disposition": f'{disposition}; filename="attachment-{attachment_id}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        # Attachments are written once under an idempotency key and never change.
        "Cache-Control": f"private, max-age={ATTACHMENT_MAX_AGE_SECONDS}, immutable",
    }
    return Response(content=data, media_type=media_type, headers=headers)


def create_api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["portal"])

    @router.get("/incidents", response_model=None)
    async def list_incidents(
        request: Request,
        status: StatusFilter | None = Query(None, description="Only incidents with this status."),
        limit: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Page size."),
        offset: int = Query(0, ge=0, le=MAX_ID, description="Number of incidents to skip."),
    ) -> Response:
        """List incidents, the most recent `last_started_at` first.

        `started` is the start of the incident's first episode and never changes. `last_started_at` is the start
        of the current episode, and `duration_seconds` counts from it to `resolved_at`, or to now while firing.
        """
        try:
            page = await service.run_in_session(
                request.app.state.database, _list_incidents, status=status, limit=limit, offset=offset
            )
        except DBAPIError as exc:
            return store_unavailable(exc, "the incident list")
        return JSONResponse(page)

    @router.get("/incidents/{incident_id}", response_model=None)
    async def get_incident(request: Request, incident_id: int = IncidentId) -> Response:
        """Return one incident with its annotations and episodes."""
        try:
            document = await service.run_in_session(request.app.state.database, _get_incident, incident_id=incident_id)
        except DBAPIError as exc:
            return store_unavailable(exc, f"incident {incident_id}")
        if document is None:
            return incident_not_found(incident_id)
        return JSONResponse(document)

    @router.get("/incidents/{incident_id}/timeline", response_model=None)
    async def get_timeline(
        request: Request,
        incident_id: int = IncidentId,
        after_id: int = Query(0, ge=0, le=MAX_ID, description="Return only entries with a larger id."),
        limit: int = Query(MAX_TIMELINE_PAGE_SIZE, ge=1, le=MAX_TIMELINE_PAGE_SIZE, description="Maximum entries."),
    ) -> Response:
        """Return the incident's timeline entries in id order."""
        try:
            entries = await service.run_in_session(
                request.app.state.database, _get_timeline, incident_id=incident_id, after_id=after_id, limit=limit
            )
        except DBAPIError as exc:
            return store_unavailable(exc, f"the timeline of incident {incident_id}")
        if entries is None:
            return incident_not_found(incident_id)
        return JSONResponse({"incident_id": incident_id, "entries": entries})

    @router.get("/attachments/{attachment_id}", response_model=None)
    async def get_attachment(
        request: Request, attachment_id: int = Path(ge=1, le=MAX_ID, description="Attachment id.")
    ) -> Response:
        """Return an attachment's bytes with its content type."""
        try:
            found = await service.run_in_session(
                request.app.state.database, _get_attachment, attachment_id=attachment_id
            )
        except DBAPIError as exc:
            return store_unavailable(exc, f"attachment {attachment_id}")
        if found is None:
            return error_response(404, "not_found", f"attachment {attachment_id} not found")
        content_type, data = found
        return attachment_response(attachment_id, content_type, data)

    return router
