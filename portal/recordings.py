"""Upload of incident-call recordings: parse and check the multipart body, store it, enqueue its transcription.

Errors (each message names the value and the fix):
    RecordingError          base class, HTTP 422 unless a subclass says otherwise
    ├── RecordingTooLarge   the body or the file is larger than OPSSEER_RECORDING_MAX_BYTES (HTTP 413)
    └── InvalidRecording    no "audio" file, an empty file, or not WAV, FLAC or MP3 by name, type or content
"""

import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from functions.models import Episode, Incident
from functions.timeline import add_attachment, add_entry

logger = logging.getLogger(__name__)

FIELD = "audio"
# Room for the multipart boundaries and part headers around the file; the file's own size is checked exactly.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
MAX_FILENAME_CHARS = 200

# Extension -> (stored content type, content types a client may send for it).
FORMATS: dict[str, tuple[str, frozenset[str]]] = {
    ".wav": ("audio/wav", frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})),
    ".flac": ("audio/flac", frozenset({"audio/flac", "audio/x-flac"})),
    ".mp3": ("audio/mpeg", frozenset({"audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg-3"})),
}
# Types that say nothing about the format; browsers and curl send them for files they do not recognise.
GENERIC_CONTENT_TYPES = frozenset({"", "application/octet-stream"})
ACCEPTED_TEXT = "a WAV, FLAC or MP3 file (.wav, .flac or .mp3)"


class RecordingError(ValueError):
    status_code = 422
    code = "invalid_recording"


class RecordingTooLarge(RecordingError):
    status_code = 413
    code = "payload_too_large"


class InvalidRecording(RecordingError):
    pass


@dataclass(frozen=True)
class Recording:
    filename: str
    content_type: str
    data: bytes


def _too_large(max_bytes: int) -> RecordingTooLarge:
    return RecordingTooLarge(
        f"the recording is over the limit of {max_bytes} bytes; upload a shorter or more compressed recording "
        "(such as MP3), or raise OPSSEER_RECORDING_MAX_BYTES"
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit - MULTIPART_OVERHEAD_BYTES)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit - MULTIPART_OVERHEAD_BYTES)
        chunks.append(chunk)
    return b"".join(chunks)


def clean_filename(raw: str | None) -> str:
    """Return the file's base name without directories or control characters, at most MAX_FILENAME_CHARS long."""
    name = PureWindowsPath(PurePosixPath(raw or "").name).name
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    return name[-MAX_FILENAME_CHARS:]


def sniff_format(data: bytes) -> str | None:
    """Return the extension that the file's first bytes identify, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return ".wav"
    if data[:4] == b"fLaC":
        return ".flac"
    # An MP3 starts with an ID3 tag or directly with an MPEG audio frame (11 set sync bits).
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return ".mp3"
    return None


def check_recording(filename: str, content_type: str, data: bytes, *, max_bytes: int) -> Recording:
    """Check one uploaded file and return it with its canonical content type."""
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data:
        raise InvalidRecording(f"the file {filename!r} is empty; upload {ACCEPTED_TEXT} that contains the call")
    extension = PurePosixPath(filename.lower()).suffix
    if extension not in FORMATS:
        raise InvalidRecording(f"the file name {filename!r} does not end in .wav, .flac or .mp3; upload {ACCEPTED_TEXT}")
    stored_type, accepted_types = FORMATS[extension]
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in accepted_types and media_type not in GENERIC_CONTENT_TYPES:
        raise InvalidRecording(
            f"the content type {media_type!r} does not match the file name {filename!r}; send {stored_type} "
            "or application/octet-stream"
        )
    sniffed = sniff_format(data)
    if sniffed != extension:
        found = f"looks like {sniffed[1:].upper()}" if sniffed else "is not WAV, FLAC or MP3"
        raise InvalidRecording(f"the file {filename!r} {found} by its content; upload {ACCEPTED_TEXT} with a matching name")
    return Recording(filename=filename, content_type=stored_type, data=data)


async def parse_recording(request: Request, *, max_bytes: int) -> Recording:
    """Read the multipart body (field "audio") within the size limit and check the file."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRecording(
            f"the request body is {content_type or 'untyped'!r}; send multipart/form-data with the file in the field {FIELD!r}"
        )
    body = await _read_body(request, max_bytes + MULTIPART_OVERHEAD_BYTES)

    async def stream() -> AsyncIterator[bytes]:
        yield body

    parser = MultiPartParser(request.headers, stream(), max_files=1, max_fields=4)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRecording(f"the multipart body is invalid ({exc.message}); send one file in the field {FIELD!r}") from None
    try:
        upload = form.get(FIELD)
        if not isinstance(upload, UploadFile):
            raise InvalidRecording(f"the multipart field {FIELD!r} with the recording file is missing; send the file as {FIELD!r}")
        data = await upload.read()
        filename = clean_filename(upload.filename)
        return check_recording(filename, upload.content_type or "", data, max_bytes=max_bytes)
    finally:
        await form.close()


def recording_key(attachment_id: int) -> str:
    """Return the idempotency key of a recording's upload entry."""
    return f"recording:{attachment_id}"


def store_recording(session: Session, *, incident_id: int, recording: Recording) -> dict[str, Any] | None:
    """Store the recording as an attachment with an upload entry; return None when the incident does not exist."""
    if session.get(Incident, incident_id) is None:
        return None
    # The recording belongs to the incident's current episode, if it has one.
    episode_id = session.scalar(
        select(Episode.id).where(Episode.incident_id == incident_id).order_by(Episode.sequence.desc()).limit(1)
    )
    attachment_id = add_attachment(
        session,
        incident_id=incident_id,
        episode_id=episode_id,
        key=f"recording-upload:{uuid.uuid4().hex}",
        content_type=recording.content_type,
        data=recording.data,
    )
    add_entry(
        session,
        incident_id=incident_id,
        episode_id=episode_id,
        key=recording_key(attachment_id),
        kind="recording",
        title=f"Call recording {recording.filename} uploaded ({len(recording.data)} bytes); transcription queued",
        payload={
            "attachment_id": attachment_id,
            "filename": recording.filename,
            "content_type": recording.content_type,
            "size_bytes": len(recording.data),
        },
    )
    return {"attachment_id": attachment_id, "episode_id": episode_id}
