"""A small Prometheus HTTP API client with explicit timeouts and typed errors."""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx


class PrometheusError(Exception):
    """Base class of Prometheus client errors."""


class PrometheusUnavailable(PrometheusError):
    """Prometheus could not be reached, timed out or returned HTTP 5xx, so retrying may help."""


class PrometheusQueryError(PrometheusError):
    """Prometheus rejected the query (HTTP 4xx, errorType bad_data); retrying will not help."""


@dataclass(frozen=True)
class Series:
    """One range-query series. Values are floats, and NaN where Prometheus returned NaN or Inf."""

    labels: dict[str, str]
    timestamps: list[float]
    values: list[float]


class PrometheusClient:
    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "PrometheusClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise PrometheusUnavailable(f"GET {self.base_url}{path} failed: {exc!r}") from exc
        if response.status_code >= 500:
            raise PrometheusUnavailable(f"GET {self.base_url}{path} returned HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError as exc:
            raise PrometheusUnavailable(f"GET {self.base_url}{path} returned a body that is not JSON") from exc
        if document.get("status") != "success":
            raise PrometheusQueryError(
                f"Prometheus rejected {params.get('query', path)!r}: {document.get('errorType')}: {document.get('error')}"
            )
        return document["data"]

    def query_range(self, query: str, *, start: datetime, end: datetime, step_seconds: float) -> list[Series]:
        data = self._get(
            "/api/v1/query_range",
            {"query": query, "start": start.timestamp(), "end": end.timestamp(), "step": step_seconds},
        )
        return [
            Series(
                labels=result["metric"],
                timestamps=[float(timestamp) for timestamp, _ in result["values"]],
                values=[_finite(value) for _, value in result["values"]],
            )
            for result in data["result"]
        ]

    def query(self, query: str) -> list[tuple[dict[str, str], float]]:
        data = self._get("/api/v1/query", {"query": query})
        if data["resultType"] != "vector":
            raise PrometheusQueryError(f"expected an instant vector from {query!r}, got {data['resultType']}")
        return [(result["metric"], _finite(result["value"][1])) for result in data["result"]]

    def alerts(self) -> list[dict[str, Any]]:
        """Return the alerts Prometheus currently holds, pending or firing."""
        return self._get("/api/v1/alerts", {})["alerts"]


def _finite(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else math.nan
