"""Client of the model gateway (the BentoML services): forecasts, runbook answer spans and transcripts.

Errors:
    ModelServiceError             base class
    ├── ModelServiceUnavailable   connection refused, timeout or HTTP 5xx; a TransientError, so steps retry it
    └── ModelServiceRejected      HTTP 4xx: the service rejected this input (for example "insufficient data");
                                  retrying the same input will not help
"""

import logging
from functools import lru_cache
from typing import Any

import httpx

from functions.settings import get_settings
from functions.tasks.base import TransientError

logger = logging.getLogger(__name__)

MAX_ERROR_TEXT = 500


class ModelServiceError(Exception):
    """Base class of model gateway errors."""


class ModelServiceUnavailable(ModelServiceError, TransientError):
    """The gateway could not be reached, timed out or failed with HTTP 5xx; retrying may help."""


class ModelServiceRejected(ModelServiceError):
    """The gateway returned HTTP 4xx; the message contains its explanation."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class ModelServices:
    """Calls the gateway's /forecast, /ask and /transcribe endpoints with an explicit timeout."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "ModelServices":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _post(self, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = self._client.post(path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ModelServiceUnavailable(f"POST {url} timed out after {self._client.timeout.read} s") from exc
        except httpx.HTTPError as exc:
            raise ModelServiceUnavailable(f"POST {url} failed: {exc!r}") from exc
        detail = response.text[:MAX_ERROR_TEXT].strip()
        if response.status_code >= 500:
            raise ModelServiceUnavailable(f"POST {url} returned HTTP {response.status_code}: {detail}")
        if response.status_code >= 400:
            raise ModelServiceRejected(f"POST {url} returned HTTP {response.status_code}: {detail}", status_code=response.status_code)
        try:
            return response.json()
        except ValueError as exc:
            raise ModelServiceUnavailable(f"POST {url} returned a body that is not JSON: {detail[:100]!r}") from exc

    def forecast(self, series: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Forecast each series; see the gateway's SeriesIn and ForecastOut shapes."""
        return self._post("/forecast", json={"series": series})

    def ask(self, question: str, *, top_k: int = 3, source_hint: str | None = None) -> dict[str, Any]:
        """Answer a question from the runbooks, with the source file, heading and line range of the answer."""
        return self._post("/ask", json={"question": question, "top_k": top_k, "source_hint": source_hint})

    def transcribe(self, data: bytes, filename: str, content_type: str, *, language: str | None = None) -> dict[str, Any]:
        """Transcribe an audio file into text and timed segments."""
        form = {"language": language} if language else None
        return self._post("/transcribe", files={"audio": (filename, data, content_type)}, data=form)


@lru_cache(maxsize=1)
def get_model_services() -> ModelServices | None:
    """Return the worker's gateway client, or None when OPSSEER_MODELS_URL is not set."""
    settings = get_settings()
    if not settings.models_url:
        return None
    return ModelServices(settings.models_url, timeout=settings.models_timeout_seconds)
