"""Routes that accept incident-call recordings: the JSON API and the incident page's upload form.

Both store the file before they respond and enqueue its transcription after the commit.
"""

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from functions.errors import error_response
from portal import service
from portal.api import IncidentId, incident_not_found, store_unavailable
from portal.page_params import InvalidPageParameter, parse_incident_id
from portal.recordings import Recording, RecordingError, parse_recording, store_recording
from portal.serializers import ATTACHMENT_PATH
from portal.views import PAGE_HEADERS

logger = logging.getLogger(__name__)

EnqueueRecording = Callable[[int], None]


def celery_enqueue_recording(attachment_id: int) -> None:
    """Enqueue the transcription task of a stored recording."""
    from functions.tasks.transcribe import transcribe_recording

    transcribe_recording.apply_async(args=[attachment_id], retry=False)


def _enqueue(request: Request, incident_id: int, attachment_id: int) -> bool:
    try:
        request.app.state.enqueue_recording(attachment_id)
    except (BrokerError, RedisError, OSError) as exc:
        # TODO: no sweep re-enqueues a recording whose task was never queued; upload it again once the broker is back.
        logger.error(
            "recording %s of incident %s stored but enqueueing its transcription failed: %s", attachment_id, incident_id, exc
        )
        return False
    return True


async def _accept(request: Request, incident_id: int) -> tuple[Recording, dict[str, Any] | None]:
    settings = request.app.state.settings
    recording = await parse_recording(request, max_bytes=settings.recording_max_bytes)
    stored = await service.run_in_session(
        request.app.state.database, store_recording, incident_id=incident_id, recording=recording
    )
    return recording, stored


def create_recordings_router(environment: Environment) -> APIRouter:
    router = APIRouter()

    @router.post("/api/v1/incidents/{incident_id}/recordings", response_model=None, tags=["portal"], status_code=202)
    async def upload_recording(request: Request, incident_id: int = IncidentId) -> Response:
        """Store an incident-call recording (multipart field "audio": WAV, FLAC or MP3) and queue its transcription.

        Returns 202 with the attachment id. The transcript arrives later as "transcript" timeline entries.
        """
        try:
            recording, stored = await _accept(request, incident_id)
        except RecordingError as exc:
            logger.info("rejected a recording for incident %s with %d: %s", incident_id, exc.status_code, exc)
            return error_response(exc.status_code, exc.code, str(exc), field="audio")
        except DBAPIError as exc:
            return store_unavailable(exc, f"incident {incident_id}")
        if stored is None:
            return incident_not_found(incident_id)

        attachment_id = stored["attachment_id"]
        queued = await run_in_threadpool(_enqueue, request, incident_id, attachment_id)
        logger.info(
            "stored recording %s (%s, %d bytes) for incident %s; transcription %s",
            attachment_id, recording.content_type, len(recording.data), incident_id, "queued" if queued else "not queued",
        )
        return JSONResponse(
            {
                "incident_id": incident_id,
                "episode_id": stored["episode_id"],
                "attachment_id": attachment_id,
                "attachment_url": ATTACHMENT_PATH.format(attachment_id=attachment_id),
                "filename": recording.filename,
                "content_type": recording.content_type,
                "size_bytes": len(recording.data),
                "transcription": "queued" if queued else "not_queued",
            },
            status_code=202,
        )

    def render_error(status_code: int, heading: str, message: str) -> HTMLResponse:
        html = environment.get_template("error.html").render(heading=heading, message=message)
        return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)

    @router.post("/incidents/{incident_id}/recordings", response_model=None, include_in_schema=False)
    async def upload_recording_form(request: Request, incident_id_param: str = Path(alias="incident_id")) -> Response:
        try:
            incident_id = parse_incident_id(incident_id_param)
        except InvalidPageParameter as exc:
            return render_error(422, "Invalid path parameter", str(exc))
        try:
            recording, stored = await _accept(request, incident_id)
        except RecordingError as exc:
            logger.info("rejected a recording form for incident %s with %d: %s", incident_id, exc.status_code, exc)
            return render_error(exc.status_code, "Recording not accepted", f"{str(exc)[0].upper()}{str(exc)[1:]}.")
        except DBAPIError as exc:
            logger.error("incident store unavailable while storing a recording for incident %s: %s", incident_id, exc.orig or exc)
            return render_error(503, "Incident store unavailable", "PostgreSQL did not respond. Upload the recording again in a few seconds.")
        if stored is None:
            return render_error(404, "Incident not found", f"There is no incident {incident_id}.")

        attachment_id = stored["attachment_id"]
        if not await run_in_threadpool(_enqueue, request, incident_id, attachment_id):
            return render_error(
                503,
                "Transcription not queued",
                f"The recording was stored as attachment {attachment_id}, but the task queue is unavailable, so it will "
                "not be transcribed. Upload it again once the queue is back.",
            )
        logger.info("stored recording %s for incident %s from the upload form", attachment_id, incident_id)
        return RedirectResponse(f"/incidents/{incident_id}", status_code=303)

    return router
