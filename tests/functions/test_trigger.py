"""The Alertmanager trigger's HTTP contract: auth, limits, validation, durability, enqueueing."""

import json

import pytest
from sqlalchemy import select

from functions.db import Database
from functions.models import Alert, Incident, WebhookDelivery
from functions.settings import Settings
from tests.functions.helpers import T0, Trigger, alert, counts, payload

EMPTY = {"incidents": 0, "episodes": 0, "alerts": 0, "timeline_entries": 0, "webhook_deliveries": 0}


@pytest.fixture
def trigger(settings, database) -> Trigger:
    return Trigger(settings, database)


def test_missing_token_is_401(trigger, database):
    response = trigger.client.post("/api/v1/alertmanager", json=payload(alert()))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    assert counts(database) == EMPTY


def test_wrong_token_is_401(trigger, database):
    response = trigger.post(payload(alert()), token="not-the-token")

    assert response.status_code == 401
    assert counts(database) == EMPTY


def test_body_over_limit_is_413(settings, database):
    small = settings.model_copy(update={"max_body_bytes": 1000})
    trigger = Trigger(small, database)

    response = trigger.post(payload(alert(annotations={"description": "x" * 2000})))

    assert response.status_code == 413
    assert "1000 bytes" in response.json()["error"]["message"]
    assert counts(database) == EMPTY


def test_invalid_json_is_400_and_stores_nothing(trigger, database):
    response = trigger.post(None, raw=b'{"alerts": [')

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]
    assert counts(database) == EMPTY


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "4"}, "alerts"),
        ({"alerts": [{"status": "exploded", "labels": {"a": "b"}}]}, "alerts[0].status"),
        ({"alerts": [{"status": "firing", "labels": {"a": ["list"]}}]}, "alerts[0].labels.a"),
        ({"alerts": [{"status": "firing", "startsAt": "yesterday", "labels": {"a": "b"}}]}, "alerts[0].startsAt"),
        ({"alerts": [{"status": "firing"}]}, "alerts[0].labels"),
        ({"alerts": [{"status": "firing", "labels": {"a": "nul\u0000"}}]}, "alerts[0].labels"),
        ({"version": "2", "alerts": []}, "version"),
        ({"truncatedAlerts": -1, "alerts": []}, "truncatedAlerts"),
        ({"truncatedAlerts": 2**40, "alerts": []}, "truncatedAlerts"),
        ({"alerts": [{"fingerprint": "f" * 10_000, "labels": {"a": "b"}}]}, "alerts[0].fingerprint"),
    ],
)
def test_invalid_payload_is_422_naming_field(trigger, database, body, field):
    response = trigger.post(body)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_payload"
    assert error["field"].startswith(field)
    assert counts(database) == EMPTY


def test_json_array_body_is_400(trigger, database):
    response = trigger.post([1, 2])

    assert response.status_code == 400
    assert "JSON object" in response.json()["error"]["message"]
    assert counts(database) == EMPTY


def test_missing_optional_fields_get_defaults(trigger, database):
    response = trigger.post({"alerts": [{"labels": {"alertname": "Bare"}}]})

    assert response.status_code == 200
    with database.session() as session:
        row = session.scalar(select(Incident))
    assert row.alertname == "Bare"
    assert row.status == "firing"
    assert row.fingerprint_source == "labels"
    assert row.severity == "unknown"
    assert row.annotations == {}


def test_raw_body_stored_byte_for_byte(trigger, database):
    body = json.dumps(payload(alert()), indent=3).encode() + b"\n\n"

    response = trigger.post(None, raw=body)

    assert response.status_code == 200
    with database.session() as session:
        delivery = session.scalar(select(WebhookDelivery))
        assert delivery.body == body
        assert delivery.alert_count == 1
        assert delivery.receiver == "opsseer"


def test_new_episode_enqueued_after_commit(trigger, database):
    body = trigger.send(payload(alert()))

    assert trigger.enqueued == [(body["opened_episodes"], [])]
    assert len(body["opened_episodes"]) == 1


def test_duplicate_enqueues_nothing(trigger, database):
    trigger.send(payload(alert()))
    trigger.send(payload(alert()))

    assert len(trigger.enqueued) == 1


def test_broker_down_still_acknowledges(settings, database):
    def broken_enqueue(opened, resolved):
        raise ConnectionRefusedError("redis is down")

    trigger = Trigger(settings, database)
    trigger.app.state.enqueue = broken_enqueue

    response = trigger.post(payload(alert()))

    assert response.status_code == 200
    assert counts(database)["episodes"] == 1


def test_database_down_is_503(settings: Settings, database):
    unreachable = Database("postgresql+psycopg://opsseer:x@127.0.0.1:1/opsseer", pool_pre_ping=False)
    trigger = Trigger(settings, unreachable)

    response = trigger.post(payload(alert()))

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"]["code"] == "store_unavailable"
    assert trigger.enqueued == []
    unreachable.dispose()


def test_alert_rows_record_outcomes(trigger, database):
    trigger.send(payload(alert()))
    trigger.send(payload(alert()))

    with database.session() as session:
        outcomes = session.scalars(select(Alert.outcome).order_by(Alert.id)).all()
    assert outcomes == ["opened", "duplicate"]


def test_metrics_count_requests(trigger, database):
    trigger.send(payload(alert(starts_at=T0)))

    text = trigger.client.get("/metrics").text
    assert 'opsseer_webhook_requests_total{code="200"}' in text
    assert 'opsseer_webhook_alerts_total{outcome="opened"}' in text
