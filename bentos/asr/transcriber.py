"""Whisper transcription with faster-whisper (CTranslate2), independent of BentoML.

The service wraps one Transcriber; the benchmark runs one in-process to compare with the served path.
"""

import hashlib
import logging
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import faster_whisper
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.tokenizer import _LANGUAGE_CODES

from bentos.asr.audio import UnsupportedLanguage
from bentos.asr.settings import BUNDLED_MODEL_PACKAGE, AsrSettings

logger = logging.getLogger(__name__)

# faster-whisper keeps its language list private; it is the list of codes Whisper's tokenizer knows.
WHISPER_LANGUAGES = frozenset(_LANGUAGE_CODES)
VERSION_HASH_CHARS = 12


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _model_version(settings: AsrSettings, model_path: str) -> str:
    """Return a version for the model: the package version, the hub commit, or a hash of model.bin."""
    if not settings.model:
        return f"{BUNDLED_MODEL_PACKAGE.replace('_', '-')}-{_package_version(BUNDLED_MODEL_PACKAGE.replace('_', '-'))}"
    path = Path(model_path)
    # A hub download lives in .../snapshots/<commit>, so the folder name is the revision.
    if path.parent.name == "snapshots":
        return path.name[:VERSION_HASH_CHARS]
    digest = hashlib.sha256()
    with (path / "model.bin").open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return "sha256-" + digest.hexdigest()[:VERSION_HASH_CHARS]


def check_language(language: str | None, supported: frozenset[str], *, model: str) -> None:
    """Raise UnsupportedLanguage unless language is None or one of the model's supported codes."""
    if language is None or language in supported:
        return
    if supported == {"en"}:
        fix = "use en or omit language, or set OPSSEER_ASR_MODEL to a multilingual model"
    else:
        fix = "use an ISO 639-1 code such as en, or omit language to detect it"
    raise UnsupportedLanguage(f"language {language!r} is not supported by {model}; {fix}")


class Transcriber:
    """A loaded Whisper model and the decoding options from the settings."""

    def __init__(self, settings: AsrSettings) -> None:
        self.settings = settings
        model_path = settings.model_path()
        if not Path(model_path).is_dir():
            # A model id: faster-whisper resolves it to a folder in the Hugging Face cache, downloading on first use.
            model_path = faster_whisper.utils.download_model(model_path)
        self.device, self.compute_type = settings.resolved_device()
        self.model = WhisperModel(
            model_path, device=self.device, compute_type=self.compute_type, cpu_threads=settings.cpu_threads
        )
        self.pipeline = BatchedInferencePipeline(self.model) if settings.batch_size > 1 else None
        self.name = (
            f"{settings.model_name()}@{_model_version(settings, model_path)} "
            f"(faster-whisper {faster_whisper.__version__})"
        )
        self.languages = frozenset(self.model.supported_languages)
        logger.info(
            "loaded speech-to-text model %s from %s on %s with %s", self.name, model_path, self.device, self.compute_type
        )

    def check_language(self, language: str | None) -> None:
        check_language(language, self.languages, model=self.name)

    def transcribe(self, samples: np.ndarray, *, language: str | None = None) -> dict[str, Any]:
        """Transcribe 16 kHz mono float32 samples and return a Transcript document."""
        options: dict[str, Any] = {"language": language, "beam_size": self.settings.beam_size}
        if self.pipeline is not None:
            segments, info = self.pipeline.transcribe(samples, batch_size=self.settings.batch_size, **options)
        else:
            segments, info = self.model.transcribe(samples, **options)

        # faster-whisper decodes lazily: iterating the generator runs the model.
        parts = [
            {"start": round(segment.start, 3), "end": round(segment.end, 3), "text": segment.text.strip()}
            for segment in segments
        ]
        parts = [part for part in parts if part["text"]]
        return {
            "text": " ".join(part["text"] for part in parts),
            "segments": parts,
            "duration_seconds": round(info.duration, 3),
            "language": info.language,
            "model": self.name,
        }
