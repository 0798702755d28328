"""Recording uploads through the API and the portal form, and their transcription by a real Celery worker."""

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from functions.db import Database
from functions.models import Attachment, TimelineEntry
from functions.settings import Settings
from opsseer.bento import served
from opsseer.stack import Stack, free_port
from opsseer.supervisor import Component, Supervisor
from opsseer.server import create_app
from tests.bentos.asr.asr_helpers import JFK, encode
from tests.portal.factories import create_incident

RECORDING_MAX_BYTES = 1_500_000


def worker_component(name: str, models_url: str) -> Component:
    """A Celery worker on its own queue, so that its OPSSEER_MODELS_URL applies to the tasks sent there."""
    import sys

    return Component(
        name=name,
        argv=[sys.executable, "-m", "celery", "-A", "functions.celery_app", "worker", "--loglevel=INFO", "--concurrency=1",
              "-Q", name, f"--hostname={name}@opsseer", "--without-gossip", "--without-mingle"],
        env={"OPSSEER_MODELS_URL": models_url},
        ready_log=rf"{name}@opsseer ready\.",
        ready_timeout=90,
    )


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[str]:
    with served("bentos.gateway:Gateway", tmp_path_factory.mktemp("gateway-logs")) as url:
        yield url


@pytest.fixture(scope="module")
def workers(stack: Stack, gateway_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Queue names of three workers: with the gateway, without OPSSEER_MODELS_URL, and with a closed port."""
    supervisor = Supervisor(tmp_path_factory.mktemp("recording-workers"), echo=False)
    queues = {"live": "asr-live", "unset": "asr-unset", "down": "asr-down"}
    urls = {"live": gateway_url, "unset": "", "down": f"http://127.0.0.1:{free_port()}"}
    try:
        for variant, queue in queues.items():
            supervisor.start(worker_component(queue, urls[variant]))
        yield queues
    finally:
        supervisor.stop_all()


def make_client(database: Database, settings: Settings, enqueue_recording: Callable[[int], None]) -> TestClient:
    settings = settings.model_copy(update={"recording_max_bytes": RECORDING_MAX_BYTES})
    app = create_app(settings, enqueue=lambda *args: None, database=database, enqueue_recording=enqueue_recording)
    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture
def queued(database: Database, settings: Settings) -> Iterator[tuple[TestClient, list[int]]]:
    ids: list[int] = []
    with make_client(database, settings, ids.append) as client:
        yield client, ids


def post(client: TestClient, incident_id: int, name: str, data: bytes, content_type: str = "audio/flac"):
    return client.post(f"/api/v1/incidents/{incident_id}/recordings", files={"audio": (name, data, content_type)})


def entries(database: Database, incident_id: int) -> list[TimelineEntry]:
    with database.session() as session:
        rows = session.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == incident_id).order_by(TimelineEntry.id)).all()
        session.expunge_all()
        return list(rows)


def wait_for_result(database: Database, incident_id: int, timeout: float = 60) -> TimelineEntry:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [entry for entry in entries(database, incident_id) if entry.kind == "transcription"]
        if found:
            return found[0]
        time.sleep(0.3)
    raise AssertionError(f"no transcription entry for incident {incident_id} within {timeout} s: {entries(database, incident_id)}")


def test_upload_stored_and_queued(queued, database: Database, corpus_dir: Path) -> None:
    client, ids = queued
    incident_id = create_incident(database).id
    data = (corpus_dir / JFK).read_bytes()

    response = post(client, incident_id, "bridge-call.flac", data)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["transcription"] == "queued"
    assert body["content_type"] == "audio/flac"
    assert body["size_bytes"] == len(data)
    assert ids == [body["attachment_id"]]
    with database.session() as session:
        attachment = session.get(Attachment, body["attachment_id"])
        assert attachment.incident_id == incident_id
        assert attachment.data == data
    [entry] = entries(database, incident_id)
    assert entry.kind == "recording"
    assert entry.payload["filename"] == "bridge-call.flac"


def test_upload_unknown_incident_404(queued, corpus_dir: Path) -> None:
    client, ids = queued

    response = post(client, 999999, "call.flac", (corpus_dir / JFK).read_bytes())

    assert response.status_code == 404
    assert "incident 999999 not found" in response.json()["error"]["message"]
    assert ids == []


def test_upload_too_large_413(queued, database: Database) -> None:
    client, ids = queued
    incident_id = create_incident(database).id

    response = post(client, incident_id, "call.wav", b"RIFF\0\0\0\0WAVE" + bytes(RECORDING_MAX_BYTES), "audio/wav")

    assert response.status_code == 413
    assert "OPSSEER_RECORDING_MAX_BYTES" in response.json()["error"]["message"]
    assert ids == []
    assert entries(database, incident_id) == []


@pytest.mark.parametrize(
    ("name", "data", "content_type", "message"),
    [
        ("call.ogg", b"OggS" + bytes(100), "audio/ogg", "does not end in .wav, .flac or .mp3"),
        ("call.flac", b"fLaC" + bytes(100), "image/png", "content type 'image/png'"),
        ("call.wav", b"plain text, not audio", "audio/wav", "is not WAV, FLAC or MP3 by its content"),
        ("call.wav", b"fLaC" + bytes(100), "application/octet-stream", "looks like FLAC"),
        ("call.mp3", b"", "audio/mpeg", "is empty"),
    ],
)
def test_upload_invalid_422(queued, database: Database, name: str, data: bytes, content_type: str, message: str) -> None:
    client, ids = queued
    incident_id = create_incident(database).id

    response = post(client, incident_id, name, data, content_type)

    assert response.status_code == 422
    assert message in response.json()["error"]["message"]
    assert ids == []


def test_upload_without_file_field_422(queued, database: Database) -> None:
    client, _ = queued
    incident_id = create_incident(database).id

    response = client.post(f"/api/v1/incidents/{incident_id}/recordings", files={"file": ("call.wav", b"RIFF", "audio/wav")})

    assert response.status_code == 422
    assert "'audio'" in response.json()["error"]["message"]


def test_form_upload_redirects_to_incident(queued, database: Database, corpus_dir: Path) -> None:
    client, ids = queued
    incident_id = create_incident(database).id

    page = client.get(f"/incidents/{incident_id}")
    response = client.post(
        f"/incidents/{incident_id}/recordings",
        files={"audio": ("call.mp3", encode(corpus_dir / JFK, format="mp3", rate=16000, channels=1), "audio/mpeg")},
        follow_redirects=False,
    )

    assert f'action="/incidents/{incident_id}/recordings"' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert "<script>" not in page.text
    assert response.status_code == 303
    assert response.headers["location"] == f"/incidents/{incident_id}"
    assert len(ids) == 1


def test_form_upload_error_page(queued, database: Database) -> None:
    client, _ = queued
    incident_id = create_incident(database).id

    response = client.post(f"/incidents/{incident_id}/recordings", files={"audio": ("call.txt", b"hello", "text/plain")})

    assert response.status_code == 422
    assert "Recording not accepted" in response.text
    assert "does not end in .wav, .flac or .mp3" in response.text


def client_for(database: Database, settings: Settings, queue: str) -> TestClient:
    # Imported here: importing a task module before the stack fixture sets OPSSEER_BROKER_URL fixes the
    # Celery configuration without a broker.
    from functions.tasks.transcribe import transcribe_recording

    return make_client(database, settings, lambda attachment_id: transcribe_recording.apply_async(args=[attachment_id], queue=queue))


def test_transcript_entries_written(workers, database: Database, settings: Settings, corpus_dir: Path) -> None:
    incident_id = create_incident(database).id
    with client_for(database, settings, workers["live"]) as client:
        response = post(client, incident_id, "jfk.flac", (corpus_dir / JFK).read_bytes())
        assert response.status_code == 202, response.text
        attachment_id = response.json()["attachment_id"]

        result = wait_for_result(database, incident_id)
        page = client.get(f"/incidents/{incident_id}")

    assert result.status == "ok", result.title
    assert "ask not what your country can do for you" in result.payload["text"].lower().replace(",", "")
    assert result.model.startswith("whisper-tiny.en@")
    rows = entries(database, incident_id)
    upload = next(entry for entry in rows if entry.kind == "recording")
    segments = [entry for entry in rows if entry.kind == "transcript"]
    assert len(segments) == result.payload["segment_count"] >= 2
    for segment in segments:
        assert segment.model == result.model
        assert segment.payload["attachment_id"] == attachment_id
        assert segment.payload["model"] == result.model
        offset = (segment.occurred_at - upload.occurred_at).total_seconds()
        assert offset == pytest.approx(segment.payload["start"], abs=0.01)
    assert segments[-1].payload["start"] >= 5.0
    assert "your country" in segments[-1].payload["text"].lower()
    assert f'>{segments[-1].title.split(" ")[0].split("–")[0]}</span>' in page.text


def test_transcription_not_configured(workers, database: Database, settings: Settings, corpus_dir: Path) -> None:
    incident_id = create_incident(database).id
    with client_for(database, settings, workers["unset"]) as client:
        assert post(client, incident_id, "jfk.flac", (corpus_dir / JFK).read_bytes()).status_code == 202

    result = wait_for_result(database, incident_id)

    assert result.status == "not_configured"
    assert "OPSSEER_MODELS_URL" in result.title
    assert [entry.kind for entry in entries(database, incident_id)] == ["recording", "transcription"]


def test_gateway_down_retries_then_fails(workers, database: Database, settings: Settings, corpus_dir: Path) -> None:
    incident_id = create_incident(database).id
    with client_for(database, settings, workers["down"]) as client:
        assert post(client, incident_id, "jfk.flac", (corpus_dir / JFK).read_bytes()).status_code == 202

    result = wait_for_result(database, incident_id, timeout=30)

    assert result.status == "failed"
    # The test settings allow 2 retries, so the task makes 3 attempts.
    assert result.payload["attempts"] == 3
    assert "model gateway is unavailable after 3 attempts" in result.title
    assert "/transcribe" in result.title
    assert [entry.kind for entry in entries(database, incident_id)] == ["recording", "transcription"]
