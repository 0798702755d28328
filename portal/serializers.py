"""Conversion of incident-store rows into the JSON documents of the portal API and its event stream."""

from datetime import UTC, datetime
from typing import Any

from functions.models import RESOLVED, Episode, Incident, TimelineEntry

ATTACHMENT_PATH = "/api/v1/attachments/{attachment_id}"


def isoformat_utc(value: datetime | None) -> str | None:
    """Format an aware datetime as ISO 8601 in UTC with a Z suffix."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def incident_duration_seconds(incident: Incident, *, now: datetime) -> float | None:
    """Return the current episode's duration in seconds, up to now while firing and up to the resolve once resolved."""
    end = incident.resolved_at if incident.status == RESOLVED else now
    if end is None:
        return None
    return max(0.0, (end - incident.last_started_at).total_seconds())


def attachment_url(payload: Any) -> str | None:
    """Return the API path of the attachment a timeline payload points to, or None when it has none."""
    if not isinstance(payload, dict):
        return None
    attachment_id = payload.get("attachment_id")
    # bool is a subclass of int, and true must not become attachment 1.
    if isinstance(attachment_id, bool) or not isinstance(attachment_id, int) or attachment_id <= 0:
        return None
    return ATTACHMENT_PATH.format(attachment_id=attachment_id)


def serialize_incident_summary(incident: Incident, *, now: datetime) -> dict[str, Any]:
    """Serialize an incident for the list.

    `started` is the first episode's start, while `last_started_at` and `duration_seconds` describe the current one.
    """
    return {
        "id": incident.id,
        "title": incident.title,
        "alertname": incident.alertname,
        "severity": incident.severity,
        "status": incident.status,
        "stale": incident.stale_since is not None,
        "started": isoformat_utc(incident.first_started_at),
        "last_started_at": isoformat_utc(incident.last_started_at),
        "resolved_at": isoformat_utc(incident.resolved_at),
        "duration_seconds": incident_duration_seconds(incident, now=now),
        "episode_count": incident.episode_count,
        "labels": incident.labels,
    }


def serialize_episode(episode: Episode, *, now: datetime) -> dict[str, Any]:
    end = episode.ended_at or now
    return {
        "id": episode.id,
        "sequence": episode.sequence,
        "status": episode.status,
        "started_at": isoformat_utc(episode.started_at),
        "ended_at": isoformat_utc(episode.ended_at),
        "duration_seconds": max(0.0, (end - episode.started_at).total_seconds()),
        "firing_seen": episode.firing_seen,
        "acknowledged_at": isoformat_utc(episode.acknowledged_at),
        "acknowledged_by": episode.acknowledged_by,
        "resolved_by": episode.resolved_by,
    }


def serialize_incident(incident: Incident, *, now: datetime) -> dict[str, Any]:
    """Serialize an incident with its annotations and episodes; the episodes must be loaded already."""
    document = serialize_incident_summary(incident, now=now)
    document.update(
        {
            "fingerprint": incident.fingerprint,
            "annotations": incident.annotations,
            "generator_url": incident.generator_url,
            "opened_by_resolved": incident.opened_by_resolved,
            "stale_since": isoformat_utc(incident.stale_since),
            "last_notified_at": isoformat_utc(incident.last_notified_at),
            "episodes": [serialize_episode(episode, now=now) for episode in incident.episodes],
        }
    )
    return document


def serialize_incident_state(incident: Incident, *, now: datetime) -> dict[str, Any]:
    """Serialize the fields the incident page updates live: status, stale marker, duration and episode count."""
    return {
        "id": incident.id,
        "status": incident.status,
        "stale": incident.stale_since is not None,
        "stale_since": isoformat_utc(incident.stale_since),
        "last_started_at": isoformat_utc(incident.last_started_at),
        "resolved_at": isoformat_utc(incident.resolved_at),
        "duration_seconds": incident_duration_seconds(incident, now=now),
        "episode_count": incident.episode_count,
    }


def serialize_timeline_entry(entry: TimelineEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "incident_id": entry.incident_id,
        "episode_id": entry.episode_id,
        "kind": entry.kind,
        "status": entry.status,
        "title": entry.title,
        "payload": entry.payload,
        "model": entry.model,
        "occurred_at": isoformat_utc(entry.occurred_at),
        "attachment_url": attachment_url(entry.payload),
    }
