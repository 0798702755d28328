"""The portal's HTML pages: the incident list and the incident page with its live timeline."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from functions.models import Incident, TimelineEntry
from portal import service
from portal.api import DEFAULT_PAGE_SIZE
from portal.page_params import InvalidPageParameter, parse_incident_id, parse_offset, parse_status
from portal.serializers import incident_duration_seconds

logger = logging.getLogger(__name__)

# Pages load only the portal's own scripts, styles and snapshot images. Links may still point to any site.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class IncidentRow:
    incident: Incident
    duration_seconds: float | None


@dataclass
class IncidentPage:
    incident: Incident
    timeline: list[TimelineEntry]
    duration_seconds: float | None


def _load_list(session: Session, *, status: str | None, limit: int, offset: int) -> tuple[list[IncidentRow], int]:
    incidents, total = service.list_incidents(session, status=status, limit=limit, offset=offset)
    now = datetime.now(UTC)
    return [IncidentRow(incident, incident_duration_seconds(incident, now=now)) for incident in incidents], total


def _load_incident(session: Session, *, incident_id: int) -> IncidentPage | None:
    incident = service.get_incident(session, incident_id=incident_id, with_episodes=True)
    if incident is None:
        return None
    timeline = list(service.list_timeline(session, incident_id=incident_id))
    return IncidentPage(incident, timeline, incident_duration_seconds(incident, now=datetime.now(UTC)))


def create_views_router(environment: Environment) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def render(name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
        html = environment.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)

    def render_error(status_code: int, heading: str, message: str) -> HTMLResponse:
        return render("error.html", {"heading": heading, "message": message}, status_code=status_code)

    def invalid_parameter(request: Request, exc: InvalidPageParameter) -> HTMLResponse:
        # The log line names the route template, not the URL, so that no client-supplied value reaches the log.
        route = request.scope["route"].path
        logger.info("rejected a request to %s: invalid %s parameter %s", route, exc.location, exc.name)
        return render_error(422, f"Invalid {exc.location} parameter", str(exc))

    def store_unavailable(exc: DBAPIError, resource: str) -> HTMLResponse:
        logger.error("incident store unavailable while rendering %s: %s", resource, exc.orig or exc)
        response = render_error(
            503, "Incident store unavailable", "PostgreSQL did not respond. Reload the page in a few seconds."
        )
        response.headers["Retry-After"] = "5"
        return response

    @router.get("/", response_model=None)
    async def index() -> Response:
        return RedirectResponse("/incidents", status_code=302)

    # NOTE: parameters are raw strings parsed in the view, so that an invalid value gets an HTML error page
    # instead of the app-wide JSON validation error (see portal.page_params).
    @router.get("/incidents", response_model=None)
    async def incident_list(
        request: Request,
        status_param: str | None = Query(None, alias="status"),
        offset_param: str | None = Query(None, alias="offset"),
    ) -> Response:
        try:
            status = parse_status(status_param)
            offset = parse_offset(offset_param)
        except InvalidPageParameter as exc:
            return invalid_parameter(request, exc)

        try:
            rows, total = await service.run_in_session(
                request.app.state.database, _load_list, status=status, limit=DEFAULT_PAGE_SIZE, offset=offset
            )
        except DBAPIError as exc:
            return store_unavailable(exc, "the incident list")

        context = {
            "rows": rows,
            "status": status,
            "total": total,
            "offset": offset,
            "page_size": DEFAULT_PAGE_SIZE,
            "previous_offset": max(0, offset - DEFAULT_PAGE_SIZE) if offset > 0 else None,
            "next_offset": offset + DEFAULT_PAGE_SIZE if offset + DEFAULT_PAGE_SIZE < total else None,
        }
        return render("incidents.html", context)

    @router.get("/incidents/{incident_id}", response_model=None)
    async def incident_detail(request: Request, incident_id_param: str = Path(alias="incident_id")) -> Response:
        try:
            incident_id = parse_incident_id(incident_id_param)
        except InvalidPageParameter as exc:
            return invalid_parameter(request, exc)

        try:
            page = await service.run_in_session(request.app.state.database, _load_incident, incident_id=incident_id)
        except DBAPIError as exc:
            return store_unavailable(exc, f"incident {incident_id}")
        if page is None:
            return render_error(404, "Incident not found", f"There is no incident {incident_id}.")

        last_entry_id = page.timeline[-1].id if page.timeline else 0
        context = {
            "incident": page.incident,
            "timeline": page.timeline,
            "duration_seconds": page.duration_seconds,
            "events_url": f"/api/v1/incidents/{incident_id}/events?after_id={last_entry_id}",
        }
        return render("incident.html", context)

    return router
