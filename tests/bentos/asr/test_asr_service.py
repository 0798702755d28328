"""The served SpeechToText service: uploads, limits and concurrent callers of the batch API."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bentos.asr.audio import decode
from opsseer.bento import served
from tests.bentos.asr.asr_helpers import JFK, KEYWORDS, LJ_0001, LJ_0002, STEREO, encode, normalized

MAX_BYTES = 1_500_000
MAX_SECONDS = 20
SERVICE_ENV = {"OPSSEER_ASR_MAX_BYTES": str(MAX_BYTES), "OPSSEER_ASR_MAX_SECONDS": str(MAX_SECONDS)}
LONG_CLIP = "audio/onnxruntime-extensions/test/data/models/phi-4/1272-128104-0004-8k.wav"


@pytest.fixture(scope="module")
def asr_url(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[str]:
    with served("bentos.asr.service:SpeechToText", tmp_path_factory.mktemp("asr-logs"), env=SERVICE_ENV) as url:
        yield url


def upload(url: str, name: str, data: bytes, content_type: str = "audio/wav", **form: str) -> httpx.Response:
    return httpx.post(f"{url}/transcribe", files={"audio": (name, data, content_type)}, data=form, timeout=120)


def error_text(response: httpx.Response) -> str:
    # BentoML 1.4 returns client errors as a one-element JSON list of {"error": message}.
    body = response.json()
    return (body[0] if isinstance(body, list) else body)["error"]


def test_flac_upload_transcribed(asr_url: str, corpus_dir: Path) -> None:
    response = upload(asr_url, "jfk.flac", (corpus_dir / JFK).read_bytes(), "audio/flac")

    assert response.status_code == 200, response.text
    transcript = response.json()
    for phrase in KEYWORDS[JFK]:
        assert phrase in normalized(transcript["text"])
    assert transcript["duration_seconds"] == pytest.approx(11.0, abs=0.05)
    assert transcript["language"] == "en"
    assert transcript["model"].startswith("whisper-tiny.en@")
    assert all({"start", "end", "text"} <= set(segment) for segment in transcript["segments"])


def test_mp3_upload_transcribed(asr_url: str, corpus_dir: Path) -> None:
    response = upload(asr_url, "jfk.mp3", encode(corpus_dir / JFK, format="mp3", rate=8000, channels=2), "audio/mpeg")

    assert response.status_code == 200, response.text
    assert "ask not what your country can do for you" in normalized(response.json()["text"])


def test_oversized_upload_is_413(asr_url: str) -> None:
    response = upload(asr_url, "big.wav", b"RIFF" + bytes(MAX_BYTES + 100_000))

    assert response.status_code == 413
    assert f"{MAX_BYTES} bytes" in error_text(response)


def test_upload_just_over_limit_is_413(asr_url: str, corpus_dir: Path) -> None:
    # Within the multipart allowance of the middleware, so the service's exact file-size check answers.
    response = upload(asr_url, "big.wav", bytes(MAX_BYTES + 10))

    assert response.status_code == 413
    assert f"{MAX_BYTES + 10} bytes" in error_text(response)


def test_too_long_upload_is_422(asr_url: str, corpus_dir: Path) -> None:
    response = upload(asr_url, "long.wav", (corpus_dir / LONG_CLIP).read_bytes())

    assert response.status_code == 422
    assert f"limit of {MAX_SECONDS} s" in error_text(response)


def test_garbage_upload_is_422(asr_url: str) -> None:
    response = upload(asr_url, "notes.wav", b"these are meeting notes, not audio")

    assert response.status_code == 422
    assert "WAV, FLAC or MP3" in error_text(response)


def test_unsupported_language_is_422(asr_url: str, corpus_dir: Path) -> None:
    response = upload(asr_url, "jfk.flac", (corpus_dir / JFK).read_bytes(), "audio/flac", language="de")

    assert response.status_code == 422
    assert "'de'" in error_text(response)


def test_concurrent_batch_callers_get_their_own_transcripts(asr_url: str, corpus_dir: Path) -> None:
    clips = [JFK, LJ_0002, STEREO, LJ_0001]
    bodies = {clip: {"clips": [{"samples": decode(corpus_dir / clip, max_seconds=60).samples.tolist()}]} for clip in clips}
    # One invalid caller in the same burst must get its own 400 and not fail the others' batch.
    bodies["invalid"] = {"clips": [{"samples": []}]}

    def call(name: str) -> tuple[str, httpx.Response]:
        return name, httpx.post(f"{asr_url}/transcribe_batch", json=bodies[name], timeout=120)

    with ThreadPoolExecutor(len(bodies)) as pool:
        results = dict(pool.map(call, list(bodies)))

    for clip in clips:
        response = results[clip]
        assert response.status_code == 200, (clip, response.text)
        [transcript] = response.json()
        for phrase in KEYWORDS[clip]:
            assert phrase in normalized(transcript["text"]), (clip, transcript["text"])
    assert results["invalid"].status_code == 400
    assert "samples is empty" in results["invalid"].text
