"""Apply a parsed webhook to the incident store.

Rules, per alert, decided by the per-alert status (never the group status, never endsAt alone):
- An unseen fingerprint opens an incident. If the first notification is already resolved, the incident is
  created resolved and flagged `opened_by_resolved`.
- Firing while the latest episode is open is a duplicate (a repeat notification or an HA-pair copy).
- Firing after the latest episode was resolved opens a new episode only when its startsAt is later than that
  resolve; an older startsAt is a late copy or a stale replay and changes nothing.
- Resolved closes the open episode; resolving an episode that is already closed changes nothing.
- An alert missing from a payload is never taken as resolved (truncated groups drop alerts).

Incident rows are locked in fingerprint order, so concurrent deliveries for the same alerts serialise
instead of deadlocking.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, insert, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from functions.alertmanager import ParsedAlert, ParsedWebhook
from functions.models import FIRING, RESOLVED, Alert, Episode, Incident, TimelineEntry, WebhookDelivery

logger = logging.getLogger(__name__)

# Outcomes recorded on each Alert row.
OPENED = "opened"
REOPENED = "reopened"
DUPLICATE = "duplicate"
CLOSED = "resolved"
RESOLVED_UNSEEN = "resolved_unseen"
RESOLVED_DUPLICATE = "resolved_duplicate"
IGNORED_STALE = "ignored_stale"


@dataclass(slots=True)
class DeliveryResult:
    """What one delivery changed: ids of episodes whose pipelines must run."""

    delivery_id: int
    opened_episode_ids: list[int] = field(default_factory=list)
    resolved_episode_ids: list[int] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _EpisodeState:
    """An episode as the correlation sees it; id is None until inserted."""

    id: int | None
    sequence: int
    started_at: datetime
    ended_at: datetime | None
    firing_seen: bool
    annotations: dict
    changed: bool = False

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


def record_delivery(session: Session, *, webhook: ParsedWebhook, body: bytes, received_at: datetime) -> DeliveryResult:
    """Store the raw delivery and apply its alerts in the caller's transaction."""
    delivery_id = session.execute(
        insert(WebhookDelivery)
        .values(
            body=body,
            receiver=webhook.receiver,
            group_key=webhook.group_key,
            status=webhook.status,
            alert_count=len(webhook.alerts),
            truncated_alerts=webhook.truncated_alerts,
            external_url=webhook.external_url,
            received_at=received_at,
        )
        .returning(WebhookDelivery.id)
    ).scalar_one()
    result = DeliveryResult(delivery_id=delivery_id)
    if webhook.truncated_alerts:
        logger.warning(
            "delivery %s for group %r omitted %d alerts (truncatedAlerts); their incidents are left unchanged",
            delivery_id,
            webhook.group_key,
            webhook.truncated_alerts,
        )
    if not webhook.alerts:
        return result

    incidents = _lock_incidents(session, webhook.alerts, received_at)
    episodes = _load_episodes(session, webhook.alerts, incidents)

    alert_rows = []
    for alert in webhook.alerts:
        incident = incidents[alert.fingerprint]
        history = episodes[incident.id]
        outcome, episode = _apply(alert, history, received_at)
        result.outcomes.append(outcome)
        alert_rows.append((alert, incident, episode, outcome))
        if outcome in (IGNORED_STALE,):
            continue
        if outcome not in (RESOLVED_DUPLICATE,):
            incident.last_notified_at = received_at
            incident.stale_since = None

    _write_episodes(session, incidents, episodes, received_at, result)
    session.execute(
        insert(Alert),
        [
            {
                "delivery_id": delivery_id,
                "incident_id": incident.id,
                "episode_id": episode.id if episode else None,
                "fingerprint": alert.fingerprint,
                "status": alert.status,
                "starts_at": alert.starts_at,
                "ends_at": alert.ends_at,
                "labels": alert.labels,
                "annotations": alert.annotations,
                "generator_url": alert.generator_url,
                "outcome": outcome,
                "received_at": received_at,
            }
            for alert, incident, episode, outcome in alert_rows
        ],
    )
    return result


def _lock_incidents(session: Session, alerts: list[ParsedAlert], received_at: datetime) -> dict[str, Incident]:
    """Create incidents for unseen fingerprints, then lock every incident of the delivery."""
    first_by_fingerprint: dict[str, ParsedAlert] = {}
    for alert in alerts:
        first_by_fingerprint.setdefault(alert.fingerprint, alert)
    fingerprints = sorted(first_by_fingerprint)

    new_rows = []
    for fingerprint in fingerprints:
        alert = first_by_fingerprint[fingerprint]
        new_rows.append(
            {
                "fingerprint": fingerprint,
                "fingerprint_source": alert.fingerprint_source,
                "alertname": alert.alertname,
                "severity": alert.severity,
                "title": alert.title,
                "labels": alert.labels,
                "annotations": alert.annotations,
                "generator_url": alert.generator_url,
                "status": alert.status,
                "opened_by_resolved": alert.status == RESOLVED,
                "first_started_at": alert.starts_at,
                "last_started_at": alert.starts_at,
                "last_notified_at": received_at,
                "episode_count": 0,
            }
        )
    session.execute(pg_insert(Incident).on_conflict_do_nothing(index_elements=["fingerprint"]), new_rows)

    rows = session.scalars(
        select(Incident)
        .where(Incident.fingerprint.in_(fingerprints))
        .order_by(Incident.fingerprint)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {incident.fingerprint: incident for incident in rows}


def _load_episodes(
    session: Session, alerts: list[ParsedAlert], incidents: dict[str, Incident]
) -> dict[int, list[_EpisodeState]]:
    """Load the latest episode of each incident and any episode whose start matches an alert's startsAt."""
    incident_ids = [incident.id for incident in incidents.values()]
    starts = {(incidents[alert.fingerprint].id, alert.starts_at) for alert in alerts}
    latest = (
        select(Episode.id)
        .where(Episode.incident_id.in_(incident_ids))
        .distinct(Episode.incident_id)
        .order_by(Episode.incident_id, Episode.sequence.desc())
    )
    rows = session.scalars(
        select(Episode).where(
            or_(Episode.id.in_(latest), tuple_(Episode.incident_id, Episode.started_at).in_(list(starts)))
        )
    )

    history: dict[int, list[_EpisodeState]] = {incident_id: [] for incident_id in incident_ids}
    for row in rows:
        history[row.incident_id].append(
            _EpisodeState(row.id, row.sequence, row.started_at, row.ended_at, row.firing_seen, row.annotations)
        )
    for episodes in history.values():
        episodes.sort(key=lambda episode: episode.sequence)
    return history


def _apply(alert: ParsedAlert, history: list[_EpisodeState], received_at: datetime) -> tuple[str, _EpisodeState | None]:
    """Decide what one alert changes in one incident's episodes (in memory) and name the outcome."""
    latest = history[-1] if history else None
    same_start = next((episode for episode in history if episode.started_at == alert.starts_at), None)
    next_sequence = latest.sequence + 1 if latest else 1

    if alert.status == FIRING:
        if latest is None:
            return OPENED, _append(history, alert, next_sequence, ended_at=None)
        if latest.is_open:
            return DUPLICATE, latest
        if same_start is None and alert.starts_at > latest.ended_at:
            return REOPENED, _append(history, alert, next_sequence, ended_at=None)
        return IGNORED_STALE, same_start

    ended_at = alert.ends_at or received_at
    if latest is None:
        return RESOLVED_UNSEEN, _append(history, alert, next_sequence, ended_at=max(ended_at, alert.starts_at))
    if latest.is_open:
        if ended_at >= latest.started_at:
            latest.ended_at = ended_at
            latest.changed = True
            return CLOSED, latest
        return IGNORED_STALE, None
    if same_start is not None:
        return RESOLVED_DUPLICATE, same_start
    if alert.starts_at > latest.ended_at:
        return RESOLVED_UNSEEN, _append(history, alert, next_sequence, ended_at=max(ended_at, alert.starts_at))
    return IGNORED_STALE, None


def _append(history: list[_EpisodeState], alert: ParsedAlert, sequence: int, *, ended_at: datetime | None) -> _EpisodeState:
    episode = _EpisodeState(
        id=None,
        sequence=sequence,
        started_at=alert.starts_at,
        ended_at=ended_at,
        firing_seen=alert.status == FIRING,
        annotations=alert.annotations,
        changed=True,
    )
    history.append(episode)
    return episode


def _write_episodes(
    session: Session,
    incidents: dict[str, Incident],
    episodes: dict[int, list[_EpisodeState]],
    received_at: datetime,
    result: DeliveryResult,
) -> None:
    """Insert new episodes, close resolved ones, and bring each incident row up to date."""
    incidents_by_id = {incident.id: incident for incident in incidents.values()}
    timeline_rows = []
    for incident_id, history in episodes.items():
        incident = incidents_by_id[incident_id]
        for episode in history:
            if not episode.changed:
                continue
            if episode.id is None:
                episode.id = session.execute(
                    insert(Episode)
                    .values(
                        incident_id=incident_id,
                        sequence=episode.sequence,
                        status=FIRING if episode.is_open else RESOLVED,
                        started_at=episode.started_at,
                        ended_at=episode.ended_at,
                        firing_seen=episode.firing_seen,
                        annotations=episode.annotations,
                    )
                    .returning(Episode.id)
                ).scalar_one()
                timeline_rows.append(_opened_entry(incident, episode))
                if episode.is_open:
                    result.opened_episode_ids.append(episode.id)
                else:
                    result.resolved_episode_ids.append(episode.id)
            else:
                session.execute(
                    update(Episode)
                    .where(and_(Episode.id == episode.id, Episode.ended_at.is_(None)))
                    .values(status=RESOLVED, ended_at=episode.ended_at)
                )
                result.resolved_episode_ids.append(episode.id)

        if history:
            _refresh_incident(incident, history)
    if timeline_rows:
        session.execute(pg_insert(TimelineEntry).on_conflict_do_nothing(index_elements=["idempotency_key"]), timeline_rows)
    session.flush()


def _refresh_incident(incident: Incident, history: list[_EpisodeState]) -> None:
    latest = history[-1]
    incident.status = FIRING if latest.is_open else RESOLVED
    incident.resolved_at = latest.ended_at
    incident.last_started_at = latest.started_at
    incident.episode_count = max(incident.episode_count, latest.sequence)
    if latest.changed and latest.is_open:
        incident.annotations = latest.annotations
        incident.title = latest.annotations.get("summary") or incident.title


def _opened_entry(incident: Incident, episode: _EpisodeState) -> dict:
    if episode.firing_seen:
        title = f"Alert {incident.alertname or incident.fingerprint} firing (episode {episode.sequence})"
    else:
        title = f"Alert {incident.alertname or incident.fingerprint} received already resolved (episode {episode.sequence})"
    return {
        "incident_id": incident.id,
        "episode_id": episode.id,
        "idempotency_key": f"episode:{episode.id}:opened",
        "kind": "alert",
        "status": "ok",
        "title": title,
        "payload": {
            "sequence": episode.sequence,
            "started_at": episode.started_at.isoformat(),
            "firing_seen": episode.firing_seen,
            "labels": incident.labels,
            "annotations": {key: value.replace("\x00", "\ufffd") for key, value in episode.annotations.items()},
        },
        "occurred_at": episode.started_at,
    }
