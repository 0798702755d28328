"""Correlation of webhook alerts into incidents and episodes, one behaviour per test."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from functions.alertmanager import labels_fingerprint, parse_webhook
from functions.correlation import record_delivery
from functions.models import Alert, Episode, Incident, WebhookDelivery
from tests.functions.helpers import T0, Trigger, alert, counts, incident, payload, resolved, state


@pytest.fixture
def trigger(settings, database) -> Trigger:
    return Trigger(settings, database)


def test_firing_then_resolved_is_one_incident(trigger, database):
    trigger.send(payload(alert()))
    trigger.send(payload(resolved(ends_at=T0 + timedelta(minutes=7))))

    row = incident(database)
    assert counts(database)["incidents"] == 1
    assert row.status == "resolved"
    assert row.resolved_at == T0 + timedelta(minutes=7)
    assert [episode.status for episode in row.episodes] == ["resolved"]
    assert row.episodes[0].duration_seconds == 420


def test_refire_after_resolve_is_new_episode(trigger, database):
    trigger.send(payload(alert()))
    trigger.send(payload(resolved(ends_at=T0 + timedelta(minutes=5))))
    refire = T0 + timedelta(minutes=30)

    body = trigger.send(payload(alert(starts_at=refire)))

    row = incident(database)
    assert len(body["opened_episodes"]) == 1
    assert row.status == "firing"
    assert [episode.sequence for episode in row.episodes] == [1, 2]
    assert row.episodes[1].started_at == refire
    assert row.first_started_at == T0
    assert row.episode_count == 2


def test_duplicate_delivery_changes_nothing(trigger, database):
    trigger.send(payload(alert()))
    before = state(database)

    body = trigger.send(payload(alert()))

    assert state(database) == before
    assert body["opened_episodes"] == []


def test_ha_pair_copies_open_one_episode(trigger, database):
    trigger.send(payload(alert(), receiver="opsseer"))
    trigger.send(payload(alert(), receiver="opsseer-replica"))
    trigger.send(payload(resolved(), receiver="opsseer"))
    before = state(database)

    trigger.send(payload(resolved(), receiver="opsseer-replica"))

    assert state(database) == before
    assert counts(database)["episodes"] == 1


def test_concurrent_ha_copies_open_one_episode(database):
    body = b'{"alerts": [{"status": "firing", "fingerprint": "fp-race", "labels": {"alertname": "Race"}, "startsAt": "2026-12-04T12:00:00Z"}]}'
    barrier = threading.Barrier(4)
    errors = []

    def deliver():
        try:
            barrier.wait()
            now = datetime.now(UTC)
            with database.session() as session:
                record_delivery(session, webhook=parse_webhook(body, received_at=now), body=body, received_at=now)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert counts(database)["incidents"] == 1
    assert counts(database)["episodes"] == 1
    with database.session() as session:
        outcomes = sorted(session.scalars(select(Alert.outcome)).all())
    assert outcomes == ["duplicate", "duplicate", "duplicate", "opened"]


def test_stale_replay_changes_nothing(trigger, database):
    trigger.send(payload(alert()))
    trigger.send(payload(resolved(ends_at=T0 + timedelta(minutes=5))))
    trigger.send(payload(alert(starts_at=T0 + timedelta(minutes=30))))
    before = state(database)

    trigger.send(payload(alert()))
    trigger.send(payload(resolved(ends_at=T0 + timedelta(minutes=5))))

    assert state(database) == before
    assert incident(database).status == "firing"


def test_per_alert_status_decides_not_group_status(trigger, database):
    trigger.send(payload(alert(), status="resolved"))

    assert incident(database).status == "firing"


def test_endsat_in_past_does_not_resolve_firing_alert(trigger, database):
    trigger.send(payload(alert(ends_at=T0 + timedelta(minutes=1))))

    row = incident(database)
    assert row.status == "firing"
    assert row.resolved_at is None


def test_resolved_for_unseen_fingerprint_creates_flagged_incident(trigger, database):
    body = trigger.send(payload(resolved(ends_at=T0 + timedelta(minutes=3))))

    row = incident(database)
    assert row.status == "resolved"
    assert row.opened_by_resolved is True
    assert row.episodes[0].firing_seen is False
    assert row.episodes[0].duration_seconds == 180
    assert body["resolved_episodes"] == [row.episodes[0].id]


def test_late_firing_copy_does_not_reopen(trigger, database):
    trigger.send(payload(resolved(ends_at=T0 + timedelta(minutes=3))))
    before = state(database)

    trigger.send(payload(alert()))

    assert state(database) == before
    assert incident(database).status == "resolved"


def test_partially_resolved_group_stays_open(trigger, database):
    first = alert(fingerprint="fp-a", labels={"instance": "a"})
    second = alert(fingerprint="fp-b", labels={"instance": "b"})
    trigger.send(payload(first, second))

    trigger.send(payload(resolved(fingerprint="fp-a", labels={"instance": "a"}), second, status="firing"))

    assert incident(database, "fp-a").status == "resolved"
    assert incident(database, "fp-b").status == "firing"


def test_truncated_group_never_resolves_missing_alerts(trigger, database):
    alerts = [alert(fingerprint=f"fp-{index}", labels={"instance": str(index)}) for index in range(4)]
    trigger.send(payload(*alerts))

    trigger.send(payload(resolved(fingerprint="fp-0", labels={"instance": "0"}), truncated=3))

    assert incident(database, "fp-0").status == "resolved"
    for index in range(1, 4):
        assert incident(database, f"fp-{index}").status == "firing"
    with database.session() as session:
        truncated = session.scalars(select(WebhookDelivery.truncated_alerts).order_by(WebhookDelivery.id)).all()
    assert truncated == [0, 3]


def test_timestamps_with_offsets_stored_utc(trigger, database):
    item = alert()
    item["startsAt"] = "2026-12-04T14:00:00.123456789+02:00"
    trigger.send(payload(item))

    row = incident(database)
    assert row.first_started_at == datetime(2026, 12, 4, 12, 0, 0, 123456, tzinfo=UTC)
    assert row.first_started_at.utcoffset() == timedelta(0)


def test_zero_endsat_means_ongoing(trigger, database):
    trigger.send(payload(alert()))

    with database.session() as session:
        stored = session.scalar(select(Alert))
        assert stored.ends_at is None
        assert session.scalar(select(Episode)).ended_at is None


def test_resolved_with_zero_endsat_uses_receipt_time(trigger, database):
    trigger.send(payload(alert()))
    item = alert("resolved")

    trigger.send(payload(item))

    row = incident(database)
    assert row.status == "resolved"
    assert row.resolved_at > datetime.now(UTC) - timedelta(minutes=1)


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert('x')</script> & <!channel>",
        "NUL \u0000 inside",
        "emoji 🔥 RTL \u202e mixed 日本語",
        "x" * 1_000_000,
        "",
        "line\nbreaks\r\nand\ttabs \\ backslash \"quotes\"",
    ],
)
def test_annotations_stored_exactly(trigger, database, text):
    trigger.send(payload(alert(annotations={"description": text, "summary": "s"})))

    with database.session() as session:
        assert session.scalar(select(Incident.annotations))["description"] == text
        assert session.scalar(select(Alert.annotations))["description"] == text
        assert session.scalar(select(Episode.annotations))["description"] == text


def test_missing_fingerprint_uses_label_hash(trigger, database):
    item = alert(fingerprint=None)
    trigger.send(payload(item))

    with database.session() as session:
        row = session.scalar(select(Incident))
    assert row.fingerprint == labels_fingerprint(item["labels"])
    assert row.fingerprint_source == "labels"


def test_fingerprint_kept_verbatim(trigger, database):
    trigger.send(payload(alert(fingerprint="  Mixed-Case:FP/01  ")))

    assert incident(database, "  Mixed-Case:FP/01  ").alertname == "HighLatency"


def test_older_resolve_leaves_new_episode_open(trigger, database):
    refire = T0 + timedelta(minutes=30)
    trigger.send(payload(alert(starts_at=refire)))

    trigger.send(payload(resolved(starts_at=T0, ends_at=T0 + timedelta(minutes=5))))

    assert incident(database).status == "firing"


def test_incident_ids_have_no_gaps(trigger, database):
    for _ in range(3):
        trigger.send(payload(alert()))

    trigger.send(payload(alert(fingerprint="fp-second", labels={"instance": "b"})))

    with database.session() as session:
        assert session.scalars(select(Incident.id).order_by(Incident.id)).all() == [1, 2]
