"""The portal's JSON read API against a real PostgreSQL incident store."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from functions.db import Database
from functions.settings import Settings
from opsseer.server import create_app
from tests.portal.factories import PNG_BYTES, T0, add_attachment, add_entry, add_incident, create_incident


@pytest.fixture
def client(database: Database, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, enqueue=lambda *args: None, database=database)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_list_newest_first(client: TestClient, database: Database) -> None:
    older = create_incident(database, title="older", started_at=T0)
    newer = create_incident(database, title="newer", started_at=T0 + timedelta(hours=1))

    response = client.get("/api/v1/incidents")

    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["incidents"]] == [newer.id, older.id]
    assert body["total"] == 2
    assert body["limit"] == 50
    assert body["offset"] == 0


def test_list_item_fields(client: TestClient, database: Database) -> None:
    incident = create_incident(
        database,
        title="Disk almost full",
        alertname="DiskFull",
        severity="warning",
        status="resolved",
        labels={"alertname": "DiskFull", "instance": "db-1"},
        started_at=T0,
        resolved_at=T0 + timedelta(minutes=5, seconds=30),
        stale_since=T0 + timedelta(minutes=1),
    )

    item = client.get("/api/v1/incidents").json()["incidents"][0]

    assert item == {
        "id": incident.id,
        "title": "Disk almost full",
        "alertname": "DiskFull",
        "severity": "warning",
        "status": "resolved",
        "stale": True,
        "started": "2026-12-04T12:00:00Z",
        "last_started_at": "2026-12-04T12:00:00Z",
        "resolved_at": "2026-12-04T12:05:30Z",
        "duration_seconds": 330.0,
        "episode_count": 1,
        "labels": {"alertname": "DiskFull", "instance": "db-1"},
    }


def test_list_firing_duration_runs_to_now(client: TestClient, database: Database) -> None:
    started = datetime.now(UTC) - timedelta(minutes=10)
    create_incident(database, started_at=started)

    item = client.get("/api/v1/incidents").json()["incidents"][0]

    assert item["resolved_at"] is None
    assert 600 <= item["duration_seconds"] < 660


def test_list_duration_counts_current_episode(client: TestClient, database: Database) -> None:
    resolved_at = T0 + timedelta(hours=2, minutes=1)
    create_incident(database, status="resolved", episodes=3, started_at=T0, resolved_at=resolved_at)

    item = client.get("/api/v1/incidents").json()["incidents"][0]

    assert item["started"] == "2026-12-04T12:00:00Z"
    assert item["last_started_at"] == "2026-12-04T14:00:00Z"
    assert item["duration_seconds"] == 60.0
    assert item["episode_count"] == 3


def test_list_datetimes_in_utc(client: TestClient, database: Database) -> None:
    tokyo = timezone(timedelta(hours=9))
    create_incident(database, started_at=datetime(2026, 12, 4, 21, 0, tzinfo=tokyo))

    item = client.get("/api/v1/incidents").json()["incidents"][0]

    assert item["started"] == "2026-12-04T12:00:00Z"


@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_list_filters_by_status(client: TestClient, database: Database, status: str) -> None:
    firing = create_incident(database, status="firing")
    resolved = create_incident(database, status="resolved", resolved_at=T0 + timedelta(minutes=1))
    expected = firing if status == "firing" else resolved

    body = client.get("/api/v1/incidents", params={"status": status}).json()

    assert [item["id"] for item in body["incidents"]] == [expected.id]
    assert body["total"] == 1


def test_list_limit_and_offset(client: TestClient, database: Database) -> None:
    ids = [create_incident(database, started_at=T0 + timedelta(minutes=index)).id for index in range(5)]
    newest_first = list(reversed(ids))

    body = client.get("/api/v1/incidents", params={"limit": 2, "offset": 1}).json()

    assert [item["id"] for item in body["incidents"]] == newest_first[1:3]
    assert body["total"] == 5
    assert body["limit"] == 2
    assert body["offset"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "open"}, "query.status"),
        ({"status": ""}, "query.status"),
        ({"limit": "0"}, "query.limit"),
        ({"limit": "501"}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"offset": "-1"}, "query.offset"),
        ({"offset": str(2**63)}, "query.offset"),
    ],
)
def test_list_invalid_query_422(client: TestClient, params: dict[str, str], field: str) -> None:
    response = client.get("/api/v1/incidents", params=params)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["field"] == field
    assert field in error["message"]


def test_detail_has_episodes_and_annotations(client: TestClient, database: Database) -> None:
    annotations = {
        "summary": "<script>alert(1)</script>",
        "description": "line one\nline two\x00after NUL",
        "long": "x" * 100_000,
        "runbook_url": "https://runbooks.example.com/high-latency",
    }
    incident = create_incident(
        database, status="resolved", episodes=2, annotations=annotations, resolved_at=T0 + timedelta(hours=1, minutes=3)
    )

    response = client.get(f"/api/v1/incidents/{incident.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == incident.id
    assert body["annotations"] == annotations
    assert body["fingerprint"] == incident.fingerprint
    assert [episode["sequence"] for episode in body["episodes"]] == [1, 2]
    assert body["episodes"][0]["status"] == "resolved"
    assert body["episodes"][0]["duration_seconds"] == 600.0
    assert body["episodes"][1]["started_at"] == "2026-12-04T13:00:00Z"
    assert body["episodes"][1]["ended_at"] == "2026-12-04T13:03:00Z"


def test_detail_missing_404(client: TestClient) -> None:
    response = client.get("/api/v1/incidents/999")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "incident 999 not found"}}


@pytest.mark.parametrize("incident_id", ["0", "-3", "abc", str(2**63)])
def test_detail_invalid_id_422(client: TestClient, incident_id: str) -> None:
    response = client.get(f"/api/v1/incidents/{incident_id}")

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "path.incident_id"


def test_timeline_in_id_order(client: TestClient, database: Database) -> None:
    with database.session() as session:
        incident = add_incident(session)
        other = add_incident(session)
        # occurred_at runs backwards, so only id order puts these in insertion order.
        first = add_entry(session, incident, kind="alert", occurred_at=T0 + timedelta(minutes=2))
        add_entry(session, other, kind="alert")
        second = add_entry(session, incident, kind="snapshot", occurred_at=T0 + timedelta(minutes=1))
        third = add_entry(session, incident, kind="summary", occurred_at=T0)

    response = client.get(f"/api/v1/incidents/{incident.id}/timeline")

    assert response.status_code == 200
    entries = response.json()["entries"]
    assert [entry["id"] for entry in entries] == [first.id, second.id, third.id]
    assert [entry["kind"] for entry in entries] == ["alert", "snapshot", "summary"]
    assert entries[0]["occurred_at"] == "2026-12-04T12:02:00Z"


def test_timeline_after_id(client: TestClient, database: Database) -> None:
    with database.session() as session:
        incident = add_incident(session)
        first = add_entry(session, incident)
        second = add_entry(session, incident)
        third = add_entry(session, incident)

    entries = client.get(f"/api/v1/incidents/{incident.id}/timeline", params={"after_id": first.id}).json()["entries"]
    assert [entry["id"] for entry in entries] == [second.id, third.id]

    entries = client.get(f"/api/v1/incidents/{incident.id}/timeline", params={"after_id": third.id}).json()["entries"]
    assert entries == []


def test_timeline_entry_fields(client: TestClient, database: Database) -> None:
    with database.session() as session:
        incident = add_incident(session)
        attachment = add_attachment(session, incident)
        entry = add_entry(
            session,
            incident,
            kind="snapshot",
            title="Metric snapshot of latency (1 series)",
            payload={"attachment_id": attachment.id, "query": "latency > 0.5"},
            model="test/model@rev",
        )

    entries = client.get(f"/api/v1/incidents/{incident.id}/timeline").json()["entries"]

    assert entries == [
        {
            "id": entry.id,
            "incident_id": incident.id,
            "episode_id": None,
            "kind": "snapshot",
            "status": "ok",
            "title": "Metric snapshot of latency (1 series)",
            "payload": {"attachment_id": attachment.id, "query": "latency > 0.5"},
            "model": "test/model@rev",
            "occurred_at": "2026-12-04T12:00:00Z",
            "attachment_url": f"/api/v1/attachments/{attachment.id}",
        }
    ]


@pytest.mark.parametrize("attachment_id", [True, "7", -1, None, 1.5])
def test_timeline_ignores_malformed_attachment_id(
    client: TestClient, database: Database, attachment_id: object
) -> None:
    with database.session() as session:
        incident = add_incident(session)
        add_entry(session, incident, kind="snapshot", payload={"attachment_id": attachment_id})

    entries = client.get(f"/api/v1/incidents/{incident.id}/timeline").json()["entries"]

    assert entries[0]["attachment_url"] is None


def test_timeline_missing_incident_404(client: TestClient) -> None:
    response = client.get("/api/v1/incidents/4242/timeline")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "incident 4242 not found"}}


def test_timeline_invalid_after_id_422(client: TestClient, database: Database) -> None:
    incident = create_incident(database)

    response = client.get(f"/api/v1/incidents/{incident.id}/timeline", params={"after_id": "-1"})

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "query.after_id"


def test_attachment_bytes_and_type(client: TestClient, database: Database) -> None:
    with database.session() as session:
        attachment = add_attachment(session, add_incident(session))

    response = client.get(f"/api/v1/attachments/{attachment.id}")

    assert response.status_code == 200
    assert response.content == PNG_BYTES
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith("inline")
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("content_type", ["text/html", "image/svg+xml", "text/html\r\nX-Injected: 1", ""])
def test_attachment_unsafe_type_is_download(client: TestClient, database: Database, content_type: str) -> None:
    with database.session() as session:
        incident = add_incident(session)
        attachment = add_attachment(session, incident, data=b"<script>alert(1)</script>", content_type=content_type)

    response = client.get(f"/api/v1/attachments/{attachment.id}")

    assert response.status_code == 200
    assert response.content == b"<script>alert(1)</script>"
    assert response.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in response.headers["content-security-policy"]
    assert "x-injected" not in response.headers


def test_attachment_missing_404(client: TestClient) -> None:
    response = client.get("/api/v1/attachments/77")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "attachment 77 not found"}}
