"""The correlation contract as an executable reference model, written apart from functions/.

The suite replays each case through the real trigger and compares the store with what this model expects.
It imports nothing from functions/, so a bug there cannot leak into the expectation. The rules, as the
README states them:

- An incident is one alert identity: the Alertmanager fingerprint, kept verbatim, or, when the alert has no
  fingerprint, its label set (stored as a hash of the sorted labels).
- The per-alert `status` decides, never the group status and never `endsAt` alone. A missing status is
  firing, because a missing field must never close an incident.
- Each firing period (an alert's startsAt) is an episode. A re-fire after a resolve opens a new episode; the
  incident's first start is never overwritten.
- Duplicate deliveries, HA-pair copies and stale replays (a firing period that is already resolved, a
  resolve of a period older than the open one) change nothing.
- A resolved notification for an unseen identity creates a resolved incident flagged `opened_by_resolved`,
  and a late firing copy of the same period does not reopen it.
- An alert missing from a payload (`truncatedAlerts`, a partly resolved group) is never taken as resolved.
- A body that is not a JSON object with an `alerts` list of valid alerts is rejected with a 4xx and stores
  nothing. Accepted webhook versions are 3 and 4 (the ones Alertmanager has sent since 0.16; a missing
  version means 4).
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

ZERO_YEAR = 1
ACCEPTED_VERSIONS = {"3", "4"}
_TIMESTAMP = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?(?P<zone>[Zz]|[+-]\d{2}:\d{2})?$"
)


class Rejected(ValueError):
    """The contract says the trigger must reject this body with a 4xx."""


def parse_time(text: str) -> datetime | None:
    """Parse an RFC 3339 time as Alertmanager writes it (up to nanoseconds); None for Go's zero time."""
    match = _TIMESTAMP.match(text)
    if match is None:
        raise Rejected(f"invalid timestamp {text!r}")
    fraction = (match["fraction"] or "0")[:6].ljust(6, "0")
    zone = match["zone"] or "Z"
    zone = "+00:00" if zone in ("Z", "z") else zone
    moment = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{zone}").astimezone(UTC)
    return None if moment.year == ZERO_YEAR else moment


@dataclass
class AlertView:
    """One alert of a delivery as the contract reads it."""

    identity: tuple
    status: str
    starts_at: datetime
    ends_at: datetime | None
    starts_known: bool


@dataclass
class ExpectedEpisode:
    started_at: datetime
    ended_at: datetime | None
    firing_seen: bool
    # False when the time came from the moment of delivery (no startsAt or endsAt in the payload).
    start_known: bool = True
    end_known: bool = True

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


@dataclass
class ExpectedIncident:
    identity: tuple
    opened_by_resolved: bool
    episodes: list[ExpectedEpisode] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "firing" if self.episodes and self.episodes[-1].is_open else "resolved"


@dataclass
class Expectation:
    """The state the contract predicts after a case, plus each delivery's acceptance."""

    accepted: list[bool] = field(default_factory=list)
    incidents: dict[tuple, ExpectedIncident] = field(default_factory=dict)
    enrichment_pipelines: int = 0
    resolution_pipelines: int = 0


def identity_of(alert: dict) -> tuple:
    """Return ("fingerprint", value) or, without a fingerprint, ("labels", sorted label pairs)."""
    fingerprint = alert.get("fingerprint")
    if isinstance(fingerprint, str) and fingerprint:
        return ("fingerprint", fingerprint)
    labels = alert.get("labels") or {}
    if not labels:
        raise Rejected("alert has neither a fingerprint nor labels")
    return ("labels", tuple(sorted((str(name), _text(value)) for name, value in labels.items())))


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_delivery(body: bytes, received_at: datetime) -> list[AlertView]:
    """Read a body as the contract does, raising Rejected for a body the trigger must refuse."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Rejected(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("alerts"), list):
        raise Rejected("not an object with an alerts list")
    version = _text(document.get("version", "4"))
    if version not in ACCEPTED_VERSIONS:
        raise Rejected(f"unsupported version {version!r}")

    alerts = []
    for item in document["alerts"]:
        if not isinstance(item, dict):
            raise Rejected("an alert is not an object")
        status = item.get("status", "firing")
        if status not in ("firing", "resolved"):
            raise Rejected(f"invalid alert status {status!r}")
        starts = parse_time(item["startsAt"]) if item.get("startsAt") else None
        ends = parse_time(item["endsAt"]) if item.get("endsAt") else None
        alerts.append(AlertView(identity_of(item), status, starts or received_at, ends, starts is not None))
    return alerts


def apply_alert(expectation: Expectation, alert: AlertView, received_at: datetime) -> None:
    """Apply one alert to the expected state, by the rules in the module docstring."""
    incident = expectation.incidents.get(alert.identity)
    if incident is None:
        incident = ExpectedIncident(alert.identity, opened_by_resolved=alert.status == "resolved")
        expectation.incidents[alert.identity] = incident
    episodes = incident.episodes
    latest = episodes[-1] if episodes else None
    known_period = any(episode.started_at == alert.starts_at for episode in episodes)

    if alert.status == "firing":
        if latest is None or (not latest.is_open and alert.starts_at > latest.ended_at and not known_period):
            episodes.append(ExpectedEpisode(alert.starts_at, None, True, start_known=alert.starts_known))
            expectation.enrichment_pipelines += 1
        return

    end = alert.ends_at or received_at
    end_known = alert.ends_at is not None
    if latest is not None and latest.is_open:
        # A resolve of a period that ended before the open one began is a replay of an older period.
        if end >= latest.started_at:
            latest.ended_at, latest.end_known = end, end_known
            expectation.resolution_pipelines += 1
        return
    if latest is None or (alert.starts_at > latest.ended_at and not known_period):
        episodes.append(
            ExpectedEpisode(alert.starts_at, max(end, alert.starts_at), False, alert.starts_known, end_known)
        )
        expectation.resolution_pipelines += 1


def expect(deliveries: list[tuple[bytes, datetime]]) -> Expectation:
    """Return the expected outcome of posting the deliveries in order, each with its time of posting."""
    expectation = Expectation()
    for body, received_at in deliveries:
        try:
            alerts = read_delivery(body, received_at)
        except Rejected:
            expectation.accepted.append(False)
            continue
        expectation.accepted.append(True)
        for alert in alerts:
            apply_alert(expectation, alert, received_at)
    return expectation


def close_enough(expected: datetime, produced: datetime | None, known: bool) -> bool:
    """Compare times to the millisecond, or within 30 s when the expected time is the moment of delivery."""
    if produced is None:
        return False
    tolerance = timedelta(milliseconds=1) if known else timedelta(seconds=30)
    return abs(produced - expected) <= tolerance
