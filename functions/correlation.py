"""Apply a parsed webhook to the incident store.

Rules, per alert, decided by the per-alert status (never the group status, never endsAt alone):
- An unseen fingerprint opens an incident. If the first notification is already resolved, the incident is
  created resolved and flagged `opened_by_resolved`.
- Firing while the latest episode is open is a duplicate (a repeat notification or an HA-pair copy).
- Firing after the latest episode was resolved opens a new episode only when its startsAt is later than that
  resolve. An older startsAt is a late copy or a stale replay and changes nothing.
- Resolved closes the open episode; resolving an episode that is already closed changes nothing.
- An alert missing from a payload is never taken as resolved (truncated groups drop alerts).

Incident rows are locked in fingerprint order, so concurrent deliveries for the same alerts serialise
instead of deadlocking.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from functions.alertmanager import ParsedAlert, ParsedWebhook
from functions.models import FIRING, RESOLVED, Alert, Episode, Incident, TimelineEntry, WebhookDelivery

# Core tables: the hot path skips the ORM's unit of work, which would issue one statement per changed row.
ALERTS = Alert.__table__
DELIVERIES = WebhookDelivery.__table__
EPISODES = Episode.__table__
INCIDENTS = Incident.__table__
TIMELINE = TimelineEntry.__table__

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
    """The changes of one delivery: ids of episodes whose pipelines must run, and each alert's outcome."""

    delivery_id: int
    opened_episode_ids: list[int] = field(default_factory=list)
    resolved_episode_ids: list[int] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _IncidentState:
    """The incident columns the correlation reads and writes; `touched` marks rows to write back."""

    id: int
    fingerprint: str
    alertname: str
    title: str
    labels: dict
    annotations: dict
    status: str
    resolved_at: datetime | None
    last_started_at: datetime
    last_notified_at: datetime
    stale_since: datetime | None
    episode_count: int
    is_new: bool = False
    touched: bool = False


_INCIDENT_COLUMNS = [INCIDENTS.c[name] for name in _IncidentState.__dataclass_fields__ if name not in ("touched", "is_new")]


@dataclass(slots=True)
class _EpisodeState:
    """The episode columns the correlation reads and writes. The id is None until the row is inserted."""

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
    """Store the raw delivery and apply its alerts in the caller's transaction.

    The statement count does not grow with the number of alerts: rows are read and written in batches,
    which keeps a 100-alert group about as cheap as a single alert.
    """
    connection = session.connection()
    delivery_id = connection.execute(
        insert(DELIVERIES)
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
        .returning(DELIVERIES.c.id)
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

    incidents = _lock_incidents(connection, webhook.alerts, received_at)
    episodes = _load_episodes(connection, webhook.alerts, incidents)

    decisions = []
    for alert in webhook.alerts:
        incident = incidents[alert.fingerprint]
        outcome, episode = _apply(alert, episodes[incident.id], received_at)
        result.outcomes.append(outcome)
        decisions.append((alert, incident, episode, outcome))
        if outcome in (IGNORED_STALE, RESOLVED_DUPLICATE):
            continue
        # A firing duplicate is Alertmanager's repeat notification: proof of life that clears staleness.
        incident.last_notified_at = received_at
        incident.stale_since = None
        incident.touched = True

    _write_episodes(connection, incidents, episodes, result)
    connection.execute(
        insert(ALERTS),
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
            for alert, incident, episode, outcome in decisions
        ],
    )
    return result


def _lock_incidents(connection: Connection, alerts: list[ParsedAlert], received_at: datetime) -> dict[str, _IncidentState]:
    """Lock the delivery's existing incidents, then create and lock the unseen ones."""
    first_by_fingerprint: dict[str, ParsedAlert] = {}
    for alert in alerts:
        first_by_fingerprint.setdefault(alert.fingerprint, alert)
    fingerprints = sorted(first_by_fingerprint)
    incidents = _select_for_update(connection, fingerprints)

    # Inserting only unseen fingerprints keeps incident ids free of gaps: an INSERT that hits ON CONFLICT
    # still consumes a value of the id sequence. Rows this INSERT creates are locked by this transaction.
    unseen = [fingerprint for fingerprint in fingerprints if fingerprint not in incidents]
    if unseen:
        created = connection.execute(
            pg_insert(INCIDENTS).on_conflict_do_nothing(index_elements=["fingerprint"]).returning(*_INCIDENT_COLUMNS),
            [_new_incident_row(first_by_fingerprint[fingerprint], received_at) for fingerprint in unseen],
        )
        incidents.update({row.fingerprint: _IncidentState(**row._mapping, is_new=True) for row in created})
        # A concurrent delivery created these between the SELECT and the INSERT.
        raced = [fingerprint for fingerprint in unseen if fingerprint not in incidents]
        if raced:
            incidents.update(_select_for_update(connection, raced))
    return incidents


def _select_for_update(connection: Connection, fingerprints: list[str]) -> dict[str, _IncidentState]:
    rows = connection.execute(
        select(*_INCIDENT_COLUMNS)
        .where(INCIDENTS.c.fingerprint.in_(fingerprints))
        .order_by(INCIDENTS.c.fingerprint)
        .with_for_update()
    )
    return {row.fingerprint: _IncidentState(**row._mapping) for row in rows}


def _new_incident_row(alert: ParsedAlert, received_at: datetime) -> dict:
    return {
        "fingerprint": alert.fingerprint,
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


def _load_episodes(
    connection: Connection, alerts: list[ParsedAlert], incidents: dict[str, _IncidentState]
) -> dict[int, list[_EpisodeState]]:
    """Load the latest episode of each incident and any episode whose start matches an alert's startsAt."""
    history: dict[int, list[_EpisodeState]] = {incident.id: [] for incident in incidents.values()}
    incident_ids = [incident.id for incident in incidents.values() if not incident.is_new]
    if not incident_ids:
        return history
    starts = {
        (incidents[alert.fingerprint].id, alert.starts_at) for alert in alerts if not incidents[alert.fingerprint].is_new
    }
    latest = (
        select(EPISODES.c.id)
        .where(EPISODES.c.incident_id.in_(incident_ids))
        .distinct(EPISODES.c.incident_id)
        .order_by(EPISODES.c.incident_id, EPISODES.c.sequence.desc())
    )
    rows = connection.execute(
        select(
            EPISODES.c.id,
            EPISODES.c.incident_id,
            EPISODES.c.sequence,
            EPISODES.c.started_at,
            EPISODES.c.ended_at,
            EPISODES.c.firing_seen,
            EPISODES.c.annotations,
        ).where(or_(EPISODES.c.id.in_(latest), tuple_(EPISODES.c.incident_id, EPISODES.c.started_at).in_(list(starts))))
    )

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
    connection: Connection,
    incidents: dict[str, _IncidentState],
    episodes: dict[int, list[_EpisodeState]],
    result: DeliveryResult,
) -> None:
    """Insert new episodes, close resolved ones, and write back each touched incident, in three batches."""
    incidents_by_id = {incident.id: incident for incident in incidents.values()}
    new_episodes: list[tuple[_IncidentState, _EpisodeState]] = []
    closed: list[_EpisodeState] = []
    for incident_id, history in episodes.items():
        incident = incidents_by_id[incident_id]
        for episode in history:
            if not episode.changed:
                continue
            if episode.id is None:
                new_episodes.append((incident, episode))
            else:
                closed.append(episode)
        if any(episode.changed for episode in history):
            _refresh_incident(incident, history)

    if new_episodes:
        inserted = connection.execute(
            insert(EPISODES).returning(EPISODES.c.id, sort_by_parameter_order=True),
            [
                {
                    "incident_id": incident.id,
                    "sequence": episode.sequence,
                    "status": FIRING if episode.is_open else RESOLVED,
                    "started_at": episode.started_at,
                    "ended_at": episode.ended_at,
                    "firing_seen": episode.firing_seen,
                    "annotations": episode.annotations,
                }
                for incident, episode in new_episodes
            ],
        ).scalars()
        for (_incident, episode), episode_id in zip(new_episodes, inserted, strict=True):
            episode.id = episode_id
            if episode.is_open:
                result.opened_episode_ids.append(episode_id)
            else:
                result.resolved_episode_ids.append(episode_id)
        connection.execute(
            pg_insert(TIMELINE).on_conflict_do_nothing(index_elements=["idempotency_key"]),
            [_opened_entry(incident, episode) for incident, episode in new_episodes],
        )

    if closed:
        connection.execute(
            update(EPISODES).where(EPISODES.c.id == bindparam("episode_id")).values(status=RESOLVED),
            [{"episode_id": episode.id, "ended_at": episode.ended_at} for episode in closed],
        )
        result.resolved_episode_ids.extend(episode.id for episode in closed)

    touched = [incident for incident in incidents.values() if incident.touched]
    if touched:
        connection.execute(
            update(INCIDENTS).where(INCIDENTS.c.id == bindparam("incident_id")).values(updated_at=func.now()),
            [
                {
                    "incident_id": incident.id,
                    "status": incident.status,
                    "resolved_at": incident.resolved_at,
                    "last_started_at": incident.last_started_at,
                    "last_notified_at": incident.last_notified_at,
                    "stale_since": incident.stale_since,
                    "episode_count": incident.episode_count,
                    "annotations": incident.annotations,
                    "title": incident.title,
                }
                for incident in touched
            ],
        )


def _refresh_incident(incident: _IncidentState, history: list[_EpisodeState]) -> None:
    latest = history[-1]
    incident.touched = True
    incident.status = FIRING if latest.is_open else RESOLVED
    incident.resolved_at = latest.ended_at
    incident.last_started_at = latest.started_at
    incident.episode_count = max(incident.episode_count, latest.sequence)
    if latest.changed and latest.is_open:
        incident.annotations = latest.annotations
        incident.title = latest.annotations.get("summary") or incident.title


def _opened_entry(incident: _IncidentState, episode: _EpisodeState) -> dict:
    name = incident.alertname or incident.fingerprint
    if episode.firing_seen:
        title = f"Alert {name} firing (episode {episode.sequence})"
    else:
        title = f"Alert {name} received already resolved (episode {episode.sequence})"
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
            # The payload is JSONB, which cannot hold U+0000; the exact text stays in the episode's annotations.
            "annotations": {key: value.replace("\x00", "\ufffd") for key, value in episode.annotations.items()},
        },
        "model": None,
        "occurred_at": episode.started_at,
    }
