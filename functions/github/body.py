"""Markdown for incident issues and comments, with alert text escaped and bodies kept under GitHub's limit.

Alert labels and annotations come from monitored systems and may contain Markdown, HTML or @mentions.
`escape_text` turns all of them into literal text, so an annotation can never close the hidden marker,
ping a team, or link another issue.
"""

import html
import re
from collections.abc import Iterable
from typing import Any

from functions.models import Episode, Incident, TimelineEntry
from functions.timeline import format_duration

# GitHub rejects issue and comment bodies longer than 65,536 characters.
MAX_BODY_CHARS = 65_536
MAX_FIELD_CHARS = 4_000
MAX_TITLE_CHARS = 256
ZERO_WIDTH_SPACE = "\u200b"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MARKDOWN = re.compile(r"([\\`*_\[\]|~!])")
_LINE_START = re.compile(r"^(\s*)([-+=#>]|\d+[.)])", re.MULTILINE)
# @user, @org/team, #123 and GH-123 become links or notifications on GitHub; a zero-width space breaks them.
_REFERENCE = re.compile(r"([@#])(?=[A-Za-z0-9])|(?<=GH)-(?=\d)", re.IGNORECASE)


def issue_marker(incident_id: int, episode_id: int) -> str:
    """Return the hidden first line of an episode's issue, which a retry searches for."""
    return f"<!-- opsseer:incident={incident_id} episode={episode_id} -->"


def comment_marker(entry_id: int) -> str:
    return f"<!-- opsseer:entry={entry_id} -->"


def escape_text(text: Any, limit: int = MAX_FIELD_CHARS) -> str:
    """Return `text` as literal Markdown: no HTML, no formatting, no mentions or references, at most `limit` chars."""
    value = _CONTROL.sub("", str(text))
    if len(value) > limit:
        value = value[:limit] + " … (truncated)"
    value = html.escape(value, quote=False)
    value = _MARKDOWN.sub(r"\\\1", value)
    value = _LINE_START.sub(lambda match: match.group(1) + "\\" + match.group(2), value)
    return _REFERENCE.sub(lambda match: (match.group(1) or "-") + ZERO_WIDTH_SPACE, value)


def code_span(text: Any, limit: int = 500) -> str:
    """Return `text` as an inline code span, where Markdown, HTML and mentions are not rendered."""
    value = _CONTROL.sub("", str(text)).replace("`", "'").replace("\n", " ").replace("\r", " ")
    if len(value) > limit:
        value = value[:limit] + " …"
    return f"`{value}`"


def incident_url(portal_url: str, incident_id: int) -> str:
    return f"{portal_url.rstrip('/')}/incidents/{incident_id}"


def issue_title(incident: Incident) -> str:
    """Plain-text title; GitHub does not render Markdown in titles, so only control characters are removed."""
    name = incident.alertname or incident.fingerprint
    if incident.title and incident.title != name:
        name = f"{name}: {incident.title}"
    title = _CONTROL.sub("", f"[{incident.severity}] {name}").replace("\n", " ")
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1] + "…"


def _forecast_lines(entry: TimelineEntry) -> list[str]:
    forecast = entry.payload.get("forecast") or {}
    breach = entry.payload.get("breach") or {}
    model = entry.model or forecast.get("model", "unknown model")
    lines = [f"Query {code_span(entry.payload.get('query', ''))}, model {code_span(model, 200)}."]
    if breach:
        probability = breach.get("probability")
        p50, p90 = breach.get("time_to_p50_seconds"), breach.get("time_to_p90_seconds")
        described = ", ".join(
            text
            for text in (
                f"probability of crossing {breach.get('threshold')}: {probability:.0%}" if isinstance(probability, (int, float)) else "",
                f"median forecast crosses in {format_duration(p50)}" if isinstance(p50, (int, float)) else "",
                f"p90 crosses in {format_duration(p90)}" if isinstance(p90, (int, float)) else "",
            )
            if text
        )
        lines.append(escape_text(described or "no breach predicted within the horizon"))
    return lines


def _runbook_lines(entry: TimelineEntry) -> list[str]:
    payload = entry.payload
    lines = [f"> {escape_text(payload.get('answer', ''))}".replace("\n", "\n> ")]
    source = payload.get("source")
    if source:
        lines.append(
            f"Source: {escape_text(source, 300)}, {escape_text(payload.get('heading', ''), 300)} "
            f"(lines {payload.get('line_start')}-{payload.get('line_end')}), model {code_span(entry.model or payload.get('model', ''), 200)}."
        )
    return lines


def issue_body(incident: Incident, episode: Episode, entries: Iterable[TimelineEntry], *, portal_url: str) -> str:
    """Build an episode's issue: marker, summary, snapshot link, forecast, runbook answer and failed steps."""
    link = incident_url(portal_url, incident.id)
    by_kind: dict[str, TimelineEntry] = {}
    failures = []
    for entry in entries:
        by_kind.setdefault(entry.kind, entry)
        if entry.status == "failed":
            failures.append(entry)
    annotations = incident.annotations or {}

    sections = [
        issue_marker(incident.id, episode.id),
        f"**{escape_text(incident.alertname or incident.fingerprint, 300)}** is firing, severity "
        f"**{escape_text(incident.severity, 50)}**, episode {episode.sequence} since {episode.started_at.isoformat()}.",
        f"Incident timeline in OpsSeer: {link}",
        "### Summary",
    ]
    for name in ("summary", "description"):
        if annotations.get(name):
            sections.append(escape_text(annotations[name]))
    labels = ", ".join(f"{escape_text(key, 200)}={escape_text(value, 500)}" for key, value in sorted((incident.labels or {}).items()))
    sections.append(f"Labels: {labels or 'none'}")

    snapshot = by_kind.get("snapshot")
    if snapshot is not None and snapshot.payload.get("attachment_id"):
        chart = f"{portal_url.rstrip('/')}/api/v1/attachments/{snapshot.payload['attachment_id']}"
        sections += ["### Snapshot", f"[Metric chart]({chart}) of {code_span(snapshot.payload.get('query', ''))}"]
    if "proactive_warning" in by_kind:
        sections += ["### Warning", escape_text(by_kind["proactive_warning"].title)]
    if "forecast" in by_kind and by_kind["forecast"].status == "ok":
        sections += ["### Forecast", *_forecast_lines(by_kind["forecast"])]
    if "runbook" in by_kind and by_kind["runbook"].status == "ok":
        sections += ["### Runbook", *_runbook_lines(by_kind["runbook"])]
    if annotations.get("runbook_url"):
        sections.append(f"Runbook: {escape_text(annotations['runbook_url'], 1000)}")
    if failures:
        sections += ["### Failed steps", *(f"- {escape_text(entry.kind, 50)}: {escape_text(entry.title, 1000)}" for entry in failures)]
    return fit_body("\n\n".join(sections), link)


def comment_body(entry: TimelineEntry, *, portal_url: str) -> str:
    """Build the comment that carries one timeline entry to the issue."""
    link = incident_url(portal_url, entry.incident_id)
    lines = [comment_marker(entry.id), f"**{escape_text(entry.kind.replace('_', ' '), 50)}** ({escape_text(entry.status, 20)}): {escape_text(entry.title)}"]
    if entry.kind == "runbook" and entry.status == "ok":
        lines += _runbook_lines(entry)
    elif entry.payload.get("text"):
        lines.append(escape_text(entry.payload["text"]))
    if entry.model:
        lines.append(f"Model: {code_span(entry.model, 200)}")
    lines.append(f"Timeline: {link}")
    return fit_body("\n\n".join(lines), link)


def close_comment(episode: Episode, *, portal_url: str) -> str:
    duration = episode.duration_seconds
    described = format_duration(duration) if duration is not None else "an unknown time"
    return fit_body(
        f"Resolved after {described} (episode {episode.sequence}, {episode.started_at.isoformat()} to "
        f"{episode.ended_at.isoformat() if episode.ended_at else 'unknown'}). Timeline: {incident_url(portal_url, episode.incident_id)}",
        incident_url(portal_url, episode.incident_id),
    )


def fit_body(body: str, link: str) -> str:
    """Cut `body` to GitHub's limit, ending with a pointer to the portal. The marker is first, so it is kept."""
    if len(body) <= MAX_BODY_CHARS:
        return body
    tail = f"\n\n… Truncated to GitHub's {MAX_BODY_CHARS:,}-character limit. The full timeline is in OpsSeer: {link}"
    cut = body[: MAX_BODY_CHARS - len(tail)]
    # A trailing backslash would escape the first character of the tail.
    cut = cut.rstrip("\\")
    return cut + tail
