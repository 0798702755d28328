"""The Jinja2 environment of the portal pages, with autoescaping on for every template, and its filters."""

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from functions import timeline
from portal.serializers import attachment_url, isoformat_utc

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


def format_duration(seconds: float | None) -> str:
    """Format seconds like timeline titles do ("1h 5m"); portal.js formats them the same way."""
    return "–" if seconds is None else timeline.format_duration(seconds)


def format_time(value: datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def http_url(value: Any) -> str | None:
    """Return value when it is an absolute http or https URL, so that no javascript: or data: URL becomes a link."""
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    if stripped.lower().startswith(("http://", "https://")) and not any(char.isspace() for char in stripped):
        return stripped
    return None


def display_value(value: Any) -> str:
    """Return a label or annotation value as text: strings as they are, any other JSON value as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


def css_token(value: Any) -> str:
    """Reduce a stored value, such as a status, to a safe CSS class suffix; portal.js applies the same rule."""
    return re.sub(r"[^a-z0-9_-]", "-", str(value).lower())[:32] or "unknown"


def format_offset(seconds: Any) -> str:
    """Format an offset into a recording as m:ss (h:mm:ss from one hour on); portal.js formats it the same way."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return "–"
    return timeline.format_offset(seconds)


def _replace_nul(value: Any) -> Any:
    # U+0000 is a parse error in HTML text and browsers drop it, so it is shown as U+FFFD instead.
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    return value


def _static_version(name: str) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def create_environment(*, stale_after_seconds: float) -> Environment:
    """Create the environment that renders the portal pages; static URLs carry a content hash to bust caches."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        finalize=_replace_nul,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    versions = {path.name: _static_version(path.name) for path in STATIC_DIR.iterdir() if path.is_file()}

    def static_url(name: str) -> str:
        return f"/static/{name}?v={versions[name]}"

    environment.globals.update(
        static_url=static_url,
        stale_after=format_duration(stale_after_seconds),
        # Entries whose attachment is a call recording: shown as a download link, never as an image.
        audio_kinds=("recording", "transcript", "transcription"),
    )
    environment.filters.update(
        duration=format_duration,
        time=format_time,
        iso=isoformat_utc,
        http_url=http_url,
        display=display_value,
        pretty_json=pretty_json,
        css_token=css_token,
        attachment_url=attachment_url,
        offset=format_offset,
    )
    return environment
