"""Settings of the forecaster service, read once from OPSSEER_FORECAST_* variables."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

BackendName = Literal["chronos", "statistical", "seasonal_naive", "auto"]


class ForecasterSettings(BaseSettings):
    """Forecaster settings. Each field is read from OPSSEER_FORECAST_<FIELD NAME IN UPPER CASE>."""

    model_config = SettingsConfigDict(env_prefix="OPSSEER_FORECAST_", extra="ignore")

    backend: BackendName = Field(
        "auto",
        description="chronos (fail start-up without weights), statistical, seasonal_naive, "
        "or auto (chronos when its weights load, else statistical)",
    )
    model: str = Field("amazon/chronos-bolt-small", description="Chronos model id on the Hugging Face Hub or a local directory")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto uses CUDA when torch sees a GPU")
    max_batch_size: int = Field(64, ge=2, description="max series BentoML merges into one model call")
    max_latency_ms: int = Field(
        5000,
        ge=10,
        description="queueing budget of adaptive batching; a request that would wait longer gets 503",
    )
    batching: bool = Field(True, description="false serves predict without adaptive batching: one model call per request")
    request_timeout_seconds: float = Field(60.0, gt=0, description="BentoML traffic timeout of one HTTP request")
    torch_threads: int | None = Field(
        None, ge=1, description="intra-op threads of torch on CPU; unset keeps torch's default (one per core)"
    )
    chronos_num_samples: int = Field(20, ge=1, description="sample paths per series for Chronos-T5 models")

