"""The Forecaster and the Gateway served by `bentoml serve` with a tiny random Chronos-Bolt model."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from bentos.forecaster.backends import ChronosBackend
from opsseer.bento import served

FORECASTER = "bentos.forecaster.service:Forecaster"
GATEWAY = "bentos.gateway:Gateway"


def service_env(model_dir: Path) -> dict[str, str]:
    return {
        "OPSSEER_FORECAST_BACKEND": "chronos",
        "OPSSEER_FORECAST_MODEL": str(model_dir),
        "OPSSEER_FORECAST_MAX_LATENCY_MS": "20000",
        "HF_HUB_OFFLINE": "1",
    }


@pytest.fixture(scope="module")
def forecaster_url(chronos_models, tmp_path_factory) -> Iterator[str]:
    with served(FORECASTER, tmp_path_factory.mktemp("forecaster-logs"), env=service_env(chronos_models["bolt"])) as url:
        yield url


@pytest.fixture(scope="module")
def gateway_url(chronos_models, tmp_path_factory) -> Iterator[str]:
    with served(GATEWAY, tmp_path_factory.mktemp("gateway-logs"), env=service_env(chronos_models["bolt"])) as url:
        yield url


def request_series(request_index: int, size: int) -> list[dict]:
    """Series whose scale (10 ** request_index times the item number) identifies the request and the item."""
    rng = np.random.default_rng(request_index)
    series = []
    for item in range(size):
        length = int(rng.integers(20, 400))
        scale = 10.0**request_index * (item + 1)
        values = scale * (1 + 0.1 * np.sin(np.arange(length) / 4) + 0.01 * rng.normal(size=length))
        series.append({"values": values.tolist(), "horizon": int(rng.integers(1, 65))})
    return series


def test_concurrent_requests_return_to_their_callers(forecaster_url, chronos_models):
    sizes = [1, 3, 7] * 4
    requests = [request_series(index, size) for index, size in enumerate(sizes)]
    barrier = threading.Barrier(len(requests))

    def call(series: list[dict]) -> httpx.Response:
        barrier.wait()
        return httpx.post(f"{forecaster_url}/predict", json={"series": series}, timeout=60)

    with ThreadPoolExecutor(len(requests)) as pool:
        responses = list(pool.map(call, requests))

    reference = ChronosBackend(str(chronos_models["bolt"]))
    for index, (series, response) in enumerate(zip(requests, responses, strict=True)):
        assert response.status_code == 200, response.text
        results = response.json()
        assert len(results) == len(series)
        expected = reference.forecast(series)
        for item, (result, alone) in enumerate(zip(results, expected, strict=True)):
            assert len(result["mean"]) == series[item]["horizon"]
            # The random model's output scales with its input, so a swapped result is off by a factor of 10 or more.
            np.testing.assert_allclose(
                result["quantiles"]["0.5"], alone.quantiles["0.5"], rtol=1e-3,
                atol=1e-4 * 10.0**index, err_msg=f"request {index} item {item}",
            )


def test_bad_series_fails_only_its_request(forecaster_url):
    good = request_series(0, 3)
    bad = [request_series(1, 1)[0], {"values": [1.0, None, 2.0], "horizon": 4}]
    barrier = threading.Barrier(2)

    def call(series: list[dict]) -> httpx.Response:
        barrier.wait()
        return httpx.post(f"{forecaster_url}/predict", json={"series": series}, timeout=60)

    with ThreadPoolExecutor(2) as pool:
        good_response, bad_response = pool.map(call, [good, bad])

    assert good_response.status_code == 200, good_response.text
    assert len(good_response.json()) == 3
    assert bad_response.status_code == 422
    assert "insufficient data" in bad_response.text


def test_metrics_exposed_after_request(forecaster_url):
    response = httpx.post(f"{forecaster_url}/predict", json={"series": request_series(2, 1)}, timeout=60)
    assert response.status_code == 200
    metrics = httpx.get(f"{forecaster_url}/metrics", timeout=10).text
    assert "bentoml_service_request_total" in metrics
    assert "bentoml_service_adaptive_batch_size_bucket" in metrics


def test_gateway_forecast(gateway_url, chronos_models):
    series = {"values": [1.0, 2.0, None, 4.0] * 5, "timestamps": [60.0 * index for index in range(20)], "horizon": 6}
    response = httpx.post(f"{gateway_url}/forecast", json={"series": [series]}, timeout=60)
    assert response.status_code == 200, response.text
    [result] = response.json()
    assert result["backend"] == "chronos"
    assert result["model"] == str(chronos_models["bolt"])
    assert result["imputed_points"] == 5
    assert result["timestamps"] == [60.0 * index for index in range(20, 26)]
    assert sorted(result["quantiles"]) == ["0.1", "0.5", "0.9"]


@pytest.mark.parametrize(
    ("series", "message"),
    [
        ([{"values": [None] * 30, "horizon": 4}], "series[0]: insufficient data"),
        ([{"values": [1.0] * 30, "horizon": 4}, {"values": [1.0] * 3, "horizon": 4}], "series[1]: insufficient data"),
        ([{"values": [1.0] * 30, "horizon": 65}], "maximum of 64"),
        ([{"values": [1.0] * 30, "horizon": 4, "quantile_levels": [0.5, 1.5]}], "outside (0, 1)"),
        ([], "series is empty"),
    ],
)
def test_gateway_rejects_bad_input_with_422(gateway_url, series, message):
    response = httpx.post(f"{gateway_url}/forecast", json={"series": series}, timeout=60)
    assert response.status_code == 422
    assert message in response.text


def test_gateway_rejects_malformed_body(gateway_url):
    response = httpx.post(f"{gateway_url}/forecast", json={"series": [{"values": "abc", "horizon": 2}]}, timeout=60)
    assert response.status_code == 400
    assert "values" in response.text
