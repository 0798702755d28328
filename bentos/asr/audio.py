"""Decoding of uploaded audio into the 16 kHz mono float32 samples that Whisper takes.

WAV, FLAC and MP3 are accepted at any sample rate and channel count; PyAV (FFmpeg) decodes them, and
several channels are mixed down to one. Every error names the problem and what the caller can do:

    AudioError                 base class, HTTP 422 unless a subclass says otherwise
    ├── AudioTooLarge          the upload is larger than OPSSEER_ASR_MAX_BYTES (HTTP 413)
    ├── UnsupportedAudio       not WAV, FLAC or MP3, or a file FFmpeg cannot decode
    ├── EmptyAudio             decodes to no samples
    ├── AudioTooLong           longer than OPSSEER_ASR_MAX_SECONDS
    └── UnsupportedLanguage    a language code the loaded model does not know
"""

import io
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
from bentoml.exceptions import BentoMLException

SAMPLE_RATE = 16000
# Container names as PyAV reports them (container.format.name).
SUPPORTED_FORMATS = {"wav": "WAV", "flac": "FLAC", "mp3": "MP3"}
SUPPORTED_TEXT = "WAV, FLAC or MP3"


class AudioError(BentoMLException):
    """An upload that cannot be transcribed; BentoML returns the message with the status code."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, message: str) -> None:
        # The status goes to the instance, not the class, so BentoML's status-to-exception table stays unchanged.
        super().__init__(message, error_code=self.status)


class AudioTooLarge(AudioError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class UnsupportedAudio(AudioError):
    pass


class EmptyAudio(AudioError):
    pass


class AudioTooLong(AudioError):
    pass


class UnsupportedLanguage(AudioError):
    pass


def _reason(exc: Exception) -> str:
    # FFmpeg errors carry the file name and errno in str(); the reason alone is clearer in a message.
    return getattr(exc, "strerror", None) or str(exc)


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray
    source_format: str
    source_sample_rate: int
    source_channels: int

    @property
    def duration_seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def check_size(size: int, *, max_bytes: int, name: str = "the upload") -> None:
    """Raise AudioTooLarge when an upload of `size` bytes is over the limit."""
    if size > max_bytes:
        raise AudioTooLarge(
            f"{name} is {size} bytes, over the limit of {max_bytes} bytes; upload a shorter or more compressed "
            "recording (such as MP3), or raise OPSSEER_ASR_MAX_BYTES"
        )


def _too_long(name: str, seconds: float, max_seconds: float) -> AudioTooLong:
    return AudioTooLong(
        f"{name} is {seconds:.1f} s long, over the limit of {max_seconds:g} s; split the recording into shorter parts "
        "or raise OPSSEER_ASR_MAX_SECONDS"
    )


def decode(source: Path | bytes | BinaryIO, *, max_seconds: float, name: str = "the upload") -> DecodedAudio:
    """Decode WAV, FLAC or MP3 to 16 kHz mono float32 samples in [-1, 1].

    The declared duration is checked before decoding, and the decoded length while decoding, so a long
    recording is rejected without holding all of it in memory.
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    elif isinstance(source, Path):
        source = str(source)
    try:
        container = av.open(source, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise UnsupportedAudio(f"{name} is not a readable audio file ({_reason(exc)}); upload a {SUPPORTED_TEXT} file") from None

    with container:
        format_name = container.format.name
        if format_name not in SUPPORTED_FORMATS:
            raise UnsupportedAudio(
                f"{name} is in the {format_name!r} format, which is not accepted; convert it to {SUPPORTED_TEXT}"
            )
        if not container.streams.audio:
            raise EmptyAudio(f"{name} contains no audio stream; upload a {SUPPORTED_TEXT} file with sound in it")
        stream = container.streams.audio[0]
        if container.duration is not None and container.duration / av.time_base > max_seconds:
            raise _too_long(name, container.duration / av.time_base, max_seconds)
        samples = _decode_stream(container, stream, name=name, max_seconds=max_seconds)
        source_rate = stream.codec_context.sample_rate or 0
        source_channels = stream.codec_context.channels or 0

    if samples.size == 0:
        raise EmptyAudio(f"{name} decodes to no samples; upload a recording that contains sound")
    return DecodedAudio(samples, SUPPORTED_FORMATS[format_name], source_rate, source_channels)


def _decode_stream(container: av.container.InputContainer, stream: av.AudioStream, *, name: str, max_seconds: float) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    max_samples = int(max_seconds * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        for frame in container.decode(stream):
            # Frames from a broken stream may lack a sample rate; resampling them would raise, so they are skipped.
            if not frame.sample_rate:
                continue
            for resampled in resampler.resample(frame):
                chunk = resampled.to_ndarray().reshape(-1)
                chunks.append(chunk)
                total += chunk.size
            if total > max_samples:
                raise _too_long(name, total / SAMPLE_RATE, max_seconds)
        for resampled in resampler.resample(None):
            chunks.append(resampled.to_ndarray().reshape(-1))
    except av.FFmpegError as exc:
        raise UnsupportedAudio(f"{name} is damaged or not valid audio ({_reason(exc)}); upload a complete {SUPPORTED_TEXT} file") from None

    if not chunks:
        return np.zeros(0, dtype=np.float32)
    samples = np.concatenate(chunks).astype(np.float32) / 32768.0
    if samples.size > max_samples:
        raise _too_long(name, samples.size / SAMPLE_RATE, max_seconds)
    return samples
