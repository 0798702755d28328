"""Transcribe an incident-call recording through the model gateway into timed timeline entries.

The task writes one "transcript" entry per segment, at the upload time plus the segment's start, and one
"transcription" entry with the full text, all in one transaction. The "transcription" entry's key marks the
recording as done, so a repeated run is a no-op. It is also the entry that records not_configured or failed.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError

from functions.celery_app import app
from functions.model_services import ModelServiceRejected, ModelServiceUnavailable, get_model_services
from functions.models import Attachment
from functions.settings import get_settings
from functions.tasks.base import OpsSeerTask, database, finish_run, start_run
from functions.timeline import add_entry, format_duration, format_offset, get_entry

logger = logging.getLogger(__name__)

KIND_SEGMENT = "transcript"
KIND_RESULT = "transcription"
EXTENSIONS = {"audio/wav": "wav", "audio/flac": "flac", "audio/mpeg": "mp3"}
MAX_TITLE_TEXT_CHARS = 200


def result_key(attachment_id: int) -> str:
    return f"recording:{attachment_id}:transcription"


def segment_key(attachment_id: int, index: int) -> str:
    return f"recording:{attachment_id}:segment:{index}"


@dataclass(frozen=True)
class StoredRecording:
    attachment_id: int
    incident_id: int
    episode_id: int | None
    uploaded_at: datetime
    filename: str
    content_type: str
    data: bytes


class MalformedTranscript(ValueError):
    """The gateway returned a transcript without the fields of the Transcript contract."""


def _load(attachment_id: int) -> StoredRecording | None | str:
    """Return the recording, None when it is gone, or the status of the result entry when it is done already."""
    with database().session() as session:
        attachment = session.get(Attachment, attachment_id)
        if attachment is None:
            return None
        existing = get_entry(session, key=result_key(attachment_id))
        if existing is not None:
            return existing.status
        upload = get_entry(session, key=f"recording:{attachment_id}")
        extension = EXTENSIONS.get(attachment.content_type, "bin")
        filename = (upload.payload.get("filename") if upload else None) or f"recording-{attachment_id}.{extension}"
        return StoredRecording(
            attachment_id=attachment.id,
            incident_id=attachment.incident_id,
            episode_id=attachment.episode_id,
            uploaded_at=attachment.created_at,
            filename=filename,
            content_type=attachment.content_type,
            data=attachment.data,
        )


def _add_result(recording: StoredRecording, *, status: str, title: str, payload: dict[str, Any], model: str | None = None) -> None:
    with database().session() as session:
        add_entry(
            session,
            incident_id=recording.incident_id,
            episode_id=recording.episode_id,
            key=result_key(recording.attachment_id),
            kind=KIND_RESULT,
            status=status,
            title=title,
            payload={"attachment_id": recording.attachment_id, "filename": recording.filename, **payload},
            model=model,
        )


def _segments(transcript: dict[str, Any]) -> list[dict[str, Any]]:
    missing = [name for name in ("text", "segments", "model") if name not in transcript]
    if missing:
        raise MalformedTranscript(f"the transcript misses the fields {missing} of the Transcript contract")
    try:
        segments = [
            {"start": float(item["start"]), "end": float(item["end"]), "text": str(item["text"]).strip()}
            for item in transcript["segments"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedTranscript(f"a transcript segment lacks start, end or text: {exc!r}") from None
    return [segment for segment in segments if segment["text"]]


def _add_transcript(recording: StoredRecording, transcript: dict[str, Any]) -> int:
    """Write the segment entries and the result entry in one transaction; return the number of segments."""
    segments = _segments(transcript)
    model = str(transcript["model"])
    text = str(transcript["text"]).strip()
    duration = transcript.get("duration_seconds")
    with database().session() as session:
        for index, segment in enumerate(segments):
            add_entry(
                session,
                incident_id=recording.incident_id,
                episode_id=recording.episode_id,
                key=segment_key(recording.attachment_id, index),
                kind=KIND_SEGMENT,
                title=f"{format_offset(segment['start'])}–{format_offset(segment['end'])} {segment['text']}",
                payload={"attachment_id": recording.attachment_id, **segment, "model": model},
                model=model,
                occurred_at=recording.uploaded_at + timedelta(seconds=segment["start"]),
            )
        shown = text if len(text) <= MAX_TITLE_TEXT_CHARS else text[: MAX_TITLE_TEXT_CHARS - 1] + "…"
        length = format_duration(duration) if isinstance(duration, (int, float)) else "unknown length"
        add_entry(
            session,
            incident_id=recording.incident_id,
            episode_id=recording.episode_id,
            key=result_key(recording.attachment_id),
            kind=KIND_RESULT,
            title=f"Transcript of {recording.filename} ({length}, {len(segments)} segments): {shown or '(no speech)'}",
            payload={
                "attachment_id": recording.attachment_id,
                "filename": recording.filename,
                "text": text,
                "duration_seconds": duration,
                "language": transcript.get("language"),
                "segment_count": len(segments),
                "model": model,
            },
            model=model,
        )
    return len(segments)


def _transcribe(task: OpsSeerTask, recording: StoredRecording, run_id: int) -> dict[str, Any]:
    ids = f"recording {recording.attachment_id} of incident {recording.incident_id}"
    services = get_model_services()
    if services is None:
        _add_result(
            recording,
            status="not_configured",
            title="Transcript not available: no model gateway is configured (set OPSSEER_MODELS_URL)",
            payload={"capability": "speech_to_text"},
        )
        finish_run(run_id, "succeeded")
        logger.info("%s not transcribed: OPSSEER_MODELS_URL is not set", ids)
        return {"status": "not_configured"}

    try:
        transcript = services.transcribe(recording.data, recording.filename, recording.content_type)
        count = _add_transcript(recording, transcript)
    except ModelServiceUnavailable as exc:
        attempts = task.request.retries + 1
        if task.request.retries < get_settings().task_max_retries:
            countdown = task.retry_countdown()
            logger.warning("%s: model gateway unavailable (attempt %d), retrying in %.1f s: %s", ids, attempts, countdown, exc)
            finish_run(run_id, "retrying", str(exc))
            raise task.retry(exc=exc, countdown=countdown, max_retries=get_settings().task_max_retries) from None
        return _fail(recording, run_id, f"the speech-to-text model gateway is unavailable after {attempts} attempts: {exc}", attempts)
    except (ModelServiceRejected, MalformedTranscript) as exc:
        return _fail(recording, run_id, f"the speech-to-text service rejected the recording: {exc}", task.request.retries + 1)

    finish_run(run_id, "succeeded")
    logger.info("%s transcribed into %d segments by %s", ids, count, transcript.get("model"))
    return {"status": "ok", "segments": count}


def _fail(recording: StoredRecording, run_id: int, error: str, attempts: int) -> dict[str, Any]:
    logger.error("recording %s of incident %s not transcribed: %s", recording.attachment_id, recording.incident_id, error)
    finish_run(run_id, "failed", error)
    _add_result(
        recording,
        status="failed",
        title=f"Transcription of {recording.filename} failed: {error}",
        payload={"error": error, "attempts": attempts},
    )
    return {"status": "failed"}


@app.task(bind=True, base=OpsSeerTask, name="opsseer.transcribe_recording")
def transcribe_recording(self: OpsSeerTask, attachment_id: int) -> dict[str, Any]:
    """Transcribe a stored call recording and add its segments to the incident's timeline."""
    try:
        recording = _load(attachment_id)
        if recording is None:
            logger.info("recording %s no longer exists, nothing to transcribe", attachment_id)
            return {"status": "gone"}
        if isinstance(recording, str):
            logger.info("recording %s already transcribed (%s), nothing to do", attachment_id, recording)
            return {"status": recording}
        run_id = start_run(recording.incident_id, recording.episode_id, self)
        return _transcribe(self, recording, run_id)
    except (OperationalError, InterfaceError) as exc:
        if self.request.retries < get_settings().task_max_retries:
            countdown = self.retry_countdown()
            logger.warning("recording %s: incident store unavailable, retrying in %.1f s: %s", attachment_id, countdown, exc.orig or exc)
            raise self.retry(exc=exc, countdown=countdown, max_retries=get_settings().task_max_retries) from None
        logger.error("recording %s gave up: incident store unavailable after %d attempts", attachment_id, self.request.retries + 1)
        raise
