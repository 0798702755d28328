"""SpeechToText: Whisper speech-to-text served by BentoML, with adaptive batching of decoded clips."""

import logging
from pathlib import Path

import bentoml

from bentos.asr.audio import check_size, decode
from bentos.asr.limits import UploadSizeLimit
from bentos.asr.schemas import Clip, Transcript
from bentos.asr.settings import get_asr_settings
from bentos.asr.transcriber import Transcriber

logger = logging.getLogger(__name__)

# The decorators need these values when the class is defined; the defaults need no environment.
SETTINGS = get_asr_settings()


@bentoml.service(
    name="speech_to_text",
    workers=1,
    resources={"cpu": "2", "memory": "2Gi"},
    traffic={"timeout": SETTINGS.request_timeout_seconds},
)
class SpeechToText:
    def __init__(self) -> None:
        self.settings = get_asr_settings()
        self.transcriber = Transcriber(self.settings)

    @bentoml.api
    def languages(self) -> list[str]:
        """List the language codes the loaded model can transcribe."""
        return sorted(self.transcriber.languages)

    # Whisper decodes one clip at a time, so a batch runs its clips one after another on the loaded model.
    # Batching bounds the queue: up to max_batch_size requests wait at most max_latency_ms and then share
    # one call, instead of each request holding a worker thread.
    @bentoml.api(batchable=True, max_batch_size=SETTINGS.max_batch_size, max_latency_ms=SETTINGS.max_latency_ms)
    def transcribe_batch(self, clips: list[Clip]) -> list[Transcript]:
        """Transcribe decoded clips; the result has one Transcript per clip, in order."""
        logger.info("transcribing a batch of %d clips", len(clips))
        return [Transcript(**self.transcriber.transcribe(clip.samples, language=clip.language)) for clip in clips]

    @bentoml.api
    def transcribe(self, audio: Path, language: str | None = None) -> Transcript:
        """Transcribe an uploaded WAV, FLAC or MP3 recording (multipart field "audio")."""
        check_size(audio.stat().st_size, max_bytes=self.settings.max_bytes)
        self.transcriber.check_language(language)
        decoded = decode(audio, max_seconds=self.settings.max_seconds)
        logger.info(
            "transcribing %.1f s of %s audio (%d Hz, %d channels)",
            decoded.duration_seconds, decoded.source_format, decoded.source_sample_rate, decoded.source_channels,
        )
        return Transcript(**self.transcriber.transcribe(decoded.samples, language=language))


SpeechToText.add_asgi_middleware(UploadSizeLimit, paths=("/transcribe",), max_bytes=SETTINGS.max_bytes)
