"""BentoML service `Forecaster`: a batchable quantile forecast API over the configured backend.

Serve alone with `bentoml serve bentos.forecaster.service:Forecaster`; the gateway composes it. BentoML merges
concurrent requests into one model call of at most OPSSEER_FORECAST_MAX_BATCH_SIZE series (adaptive batching).
Each request's series are validated while its body is parsed, before batching, so a bad series gets its own
caller a 422 response and never reaches, or fails, a merged batch.
"""

import logging

import bentoml
from bentoml.exceptions import UnprocessableEntity
from pydantic import model_validator

from bentos.forecaster.backends import load_backend
from bentos.forecaster.errors import ForecastInputError
from bentos.forecaster.hygiene import MAX_HORIZON, prepare_batch, prepare_series
from bentos.forecaster.schema import ForecastOut, SeriesIn
from bentos.forecaster.settings import ForecasterSettings

logger = logging.getLogger(__name__)

# BentoML takes batching and timeout values at class definition, so the settings are read when the
# service module is imported, which `bentoml serve` does once per process.
SETTINGS = ForecasterSettings()


class ValidatedSeriesIn(SeriesIn):
    """SeriesIn checked by hygiene while the request body is parsed; a bad series raises 422 for that request only."""

    @model_validator(mode="after")
    def _check(self) -> "ValidatedSeriesIn":
        try:
            prepare_series(self, max_horizon=MAX_HORIZON)
        except ForecastInputError as exc:
            # Not a ValueError subclass, so pydantic lets it through and BentoML returns its 422 status.
            raise UnprocessableEntity(str(exc)) from exc
        return self


@bentoml.service(
    name="forecaster",
    resources={"cpu": "2", "memory": "4Gi"},
    traffic={"timeout": SETTINGS.request_timeout_seconds},
)
class Forecaster:
    """Quantile forecasts from Chronos (GPU in bfloat16 when present) or the statistical fallback."""

    def __init__(self) -> None:
        self.settings = SETTINGS
        self.backend = load_backend(self.settings)
        logger.info(
            "forecaster ready: backend=%s model=%s version=%s max_batch_size=%d max_latency_ms=%d",
            self.backend.name, self.backend.model, self.backend.model_version,
            self.settings.max_batch_size if self.settings.batching else 1, self.settings.max_latency_ms,
        )

    def _forecast(self, series: list[ValidatedSeriesIn]) -> list[ForecastOut]:
        try:
            prepared = prepare_batch(series, max_horizon=self.backend.max_horizon)
        except ForecastInputError as exc:
            # Reached only by in-process calls: HTTP requests were validated while their body was parsed.
            raise UnprocessableEntity(str(exc)) from exc
        return self.backend.predict(prepared)

    # BentoML requires max_batch_size > 1 on a batchable API, so "batching off" declares a plain API
    # with the same name and signature: each request is then one model call.
    if SETTINGS.batching:

        @bentoml.api(
            batchable=True, batch_dim=0, max_batch_size=SETTINGS.max_batch_size, max_latency_ms=SETTINGS.max_latency_ms
        )
        def predict(self, series: list[ValidatedSeriesIn]) -> list[ForecastOut]:
            """Forecast each series; the result list has the same length and order as `series`."""
            return self._forecast(series)

    else:

        @bentoml.api
        def predict(self, series: list[ValidatedSeriesIn]) -> list[ForecastOut]:
            """Forecast each series; the result list has the same length and order as `series`."""
            return self._forecast(series)
