"""The incident event stream, read over a real uvicorn server on 127.0.0.1 with bounded timeouts."""

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import uvicorn
from sqlalchemy import delete, update

from functions.db import Database
from functions.models import Incident
from functions.settings import Settings
from opsseer.server import create_app
from tests.portal.factories import T0, add_entry, add_incident, create_entry, create_incident

SERVER_START_TIMEOUT_S = 10.0
# The stream polls once a second, so an event shows up within about a second of its commit.
EVENT_TIMEOUT_S = 8.0


@dataclass
class Event:
    event: str
    data: dict
    id: str | None
    retry: int | None


class EventReader:
    """Parse Server-Sent Events from a streamed httpx response, giving up after a deadline."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()

    def next(self, timeout_s: float = EVENT_TIMEOUT_S) -> Event:
        deadline = time.monotonic() + timeout_s
        fields: dict[str, str] = {}
        while time.monotonic() < deadline:
            line = next(self.lines)
            if line.startswith(":"):
                continue
            if line == "":
                if "data" in fields:
                    retry = fields.get("retry")
                    return Event(
                        event=fields.get("event", "message"),
                        data=json.loads(fields["data"]),
                        id=fields.get("id"),
                        retry=int(retry) if retry else None,
                    )
                fields = {}
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        raise AssertionError(f"no complete event within {timeout_s:g} s")

    def next_of(self, kind: str, timeout_s: float = EVENT_TIMEOUT_S) -> Event:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            event = self.next(deadline - time.monotonic())
            if event.event == kind:
                return event
        raise AssertionError(f"no {kind} event within {timeout_s:g} s")


@pytest.fixture
def base_url(database: Database, settings: Settings) -> Iterator[str]:
    """Serve the app on 127.0.0.1 with an OS-assigned port, in a background thread."""
    app = create_app(settings, enqueue=lambda *args: None, database=database)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="portal-uvicorn", daemon=True)
    thread.start()

    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started and time.monotonic() < deadline:
        thread.join(0.05)
    assert server.started, f"uvicorn did not start within {SERVER_START_TIMEOUT_S:g} s"

    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"

    server.should_exit = True
    thread.join(SERVER_START_TIMEOUT_S)


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(EVENT_TIMEOUT_S)) as http_client:
        yield http_client


def events_path(incident: Incident) -> str:
    return f"/api/v1/incidents/{incident.id}/events"


def test_stream_starts_with_incident_state(client: httpx.Client, database: Database) -> None:
    incident = create_incident(database, status="firing", stale_since=T0 + timedelta(hours=6))

    with client.stream("GET", events_path(incident)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = EventReader(response).next()

    assert event.event == "incident"
    assert event.id is None
    assert event.retry == 3000
    assert event.data["id"] == incident.id
    assert event.data["status"] == "firing"
    assert event.data["stale"] is True
    assert event.data["stale_since"] == "2026-12-04T18:00:00Z"


def test_stream_delivers_entry_inserted_later(client: httpx.Client, database: Database) -> None:
    incident = create_incident(database)
    existing = create_entry(database, incident, title="already on the page")

    with client.stream("GET", events_path(incident), params={"after_id": existing.id}) as response:
        reader = EventReader(response)
        reader.next_of("incident")
        new = create_entry(database, incident, kind="snapshot", title="Metric snapshot", payload={"attachment_id": 5})
        event = reader.next_of("timeline")

    assert event.id == str(new.id)
    assert event.data["id"] == new.id
    assert event.data["title"] == "Metric snapshot"
    assert event.data["kind"] == "snapshot"
    assert event.data["attachment_url"] == "/api/v1/attachments/5"


def test_stream_sends_backlog_after_id(client: httpx.Client, database: Database) -> None:
    with database.session() as session:
        incident = add_incident(session)
        first = add_entry(session, incident)
        second = add_entry(session, incident)
        third = add_entry(session, incident)
        other = add_incident(session)
        add_entry(session, other)

    with client.stream("GET", events_path(incident), params={"after_id": first.id}) as response:
        reader = EventReader(response)
        received = [reader.next_of("timeline").id, reader.next_of("timeline").id]
        fourth = create_entry(database, incident)
        received.append(reader.next_of("timeline").id)

    assert received == [str(second.id), str(third.id), str(fourth.id)]


def test_stream_last_event_id_skips_seen(client: httpx.Client, database: Database) -> None:
    with database.session() as session:
        incident = add_incident(session)
        first = add_entry(session, incident)
        second = add_entry(session, incident)
        third = add_entry(session, incident)

    headers = {"Last-Event-ID": str(second.id)}
    with client.stream("GET", events_path(incident), params={"after_id": first.id}, headers=headers) as response:
        event = EventReader(response).next_of("timeline")

    assert event.id == str(third.id)


def test_stream_sends_late_committed_entry(client: httpx.Client, database: Database) -> None:
    incident = create_incident(database)

    with client.stream("GET", events_path(incident)) as response:
        reader = EventReader(response)
        reader.next_of("incident")
        with database.session() as slow_session:
            slow = add_entry(slow_session, incident, title="committed last")
            fast = create_entry(database, incident, title="committed first")
            assert fast.id > slow.id
            assert reader.next_of("timeline").id == str(fast.id)
        late = reader.next_of("timeline")

    assert late.id == str(slow.id)
    assert late.data["title"] == "committed last"


def test_stream_incident_event_on_resolve(client: httpx.Client, database: Database) -> None:
    incident = create_incident(database, status="firing")

    with client.stream("GET", events_path(incident)) as response:
        reader = EventReader(response)
        assert reader.next_of("incident").data["status"] == "firing"
        with database.session() as session:
            session.execute(
                update(Incident)
                .where(Incident.id == incident.id)
                .values(status="resolved", resolved_at=T0 + timedelta(minutes=7))
            )
        event = reader.next_of("incident")

    assert event.data["status"] == "resolved"
    assert event.data["resolved_at"] == "2026-12-04T12:07:00Z"
    assert event.data["duration_seconds"] == 420.0


def test_stream_missing_incident_404(client: httpx.Client) -> None:
    response = client.get("/api/v1/incidents/987654/events")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "incident 987654 not found"}}


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", str(2**63)])
def test_stream_invalid_last_event_id_422(client: httpx.Client, database: Database, value: str) -> None:
    incident = create_incident(database)

    response = client.get(events_path(incident), headers={"Last-Event-ID": value})

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "header.last-event-id"


def test_stream_stops_after_disconnect(
    client: httpx.Client, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portal.events")
    incident = create_incident(database)

    with client.stream("GET", events_path(incident)) as response:
        EventReader(response).next_of("incident")

    deadline = time.monotonic() + EVENT_TIMEOUT_S
    closed = f"event stream for incident {incident.id} closed"
    while time.monotonic() < deadline and not any(closed in record.getMessage() for record in caplog.records):
        time.sleep(0.1)
    assert any(closed in record.getMessage() for record in caplog.records)


def test_stream_ends_when_incident_deleted(client: httpx.Client, database: Database) -> None:
    incident = create_incident(database)

    with client.stream("GET", events_path(incident)) as response:
        reader = EventReader(response)
        reader.next_of("incident")
        with database.session() as session:
            session.execute(delete(Incident).where(Incident.id == incident.id))
        remaining = list(reader.lines)

    assert [line for line in remaining if line.startswith("data:")] == []
