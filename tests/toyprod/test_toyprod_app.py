import time

import pytest

REQUEST_OVERHEAD_BUDGET_S = 0.15


def test_orders_lists_seed_orders(toyprod_server):
    response = toyprod_server.client.get("/orders")

    assert response.status_code == 200
    orders = response.json()
    assert [order["id"] for order in orders] == [1, 2, 3]
    assert {"item", "quantity", "id", "created_at"} <= orders[0].keys()


def test_created_order_is_listed(toyprod_server):
    response = toyprod_server.client.post("/orders", json={"item": "grinder", "quantity": 1})

    assert response.status_code == 201
    created = response.json()
    assert created["id"] == 4
    assert created["item"] == "grinder"
    assert toyprod_server.client.get("/orders").json()[-1] == created


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"item": "grinder", "quantity": 0}, "quantity"),
        ({"item": "", "quantity": 1}, "item"),
        ({"quantity": 1}, "item"),
        ({"item": "grinder", "quantity": 1, "price": 3}, "price"),
    ],
)
def test_invalid_order_returns_422_naming_field(toyprod_server, body, field):
    response = toyprod_server.client.post("/orders", json=body)

    assert response.status_code == 422
    assert [error["loc"][-1] for error in response.json()["detail"]] == [field]


def test_healthz_reports_ok(toyprod_server):
    response = toyprod_server.client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_chaos_latency_delays_orders_only(toyprod_server):
    toyprod_server.client.put("/chaos", json={"latency_ms": 300}).raise_for_status()

    started = time.perf_counter()
    assert toyprod_server.client.get("/orders").status_code == 200
    orders_s = time.perf_counter() - started

    started = time.perf_counter()
    assert toyprod_server.client.get("/healthz").status_code == 200
    healthz_s = time.perf_counter() - started

    assert 0.300 <= orders_s < 0.300 + REQUEST_OVERHEAD_BUDGET_S
    assert healthz_s < REQUEST_OVERHEAD_BUDGET_S


def test_chaos_latency_lands_in_histogram_above_slo_bucket(toyprod_server):
    toyprod_server.client.put("/chaos", json={"latency_ms": 300}).raise_for_status()
    toyprod_server.client.get("/orders").raise_for_status()

    labels = {"route": "/orders", "method": "GET", "status": "200"}
    bucket = "toyprod_http_request_duration_seconds_bucket"
    assert toyprod_server.sample(bucket, {**labels, "le": "0.25"}) == 0.0
    assert toyprod_server.sample(bucket, {**labels, "le": "0.5"}) == 1.0
    assert toyprod_server.sample("toyprod_http_request_duration_seconds_count", labels) == 1.0


def test_histogram_has_slo_threshold_bucket(toyprod_server):
    toyprod_server.client.get("/orders").raise_for_status()

    labels = {"route": "/orders", "method": "GET", "status": "200"}
    assert toyprod_server.sample("toyprod_http_request_duration_seconds_bucket", {**labels, "le": "0.25"}) == 1.0


def test_full_error_rate_counts_errors(toyprod_server):
    toyprod_server.client.put("/chaos", json={"error_rate": 1}).raise_for_status()

    statuses = [toyprod_server.client.get("/orders").status_code for _ in range(5)]

    assert statuses == [500] * 5
    assert toyprod_server.sample("toyprod_http_request_errors_total", {"route": "/orders", "method": "GET"}) == 5.0
    assert toyprod_server.sample(
        "toyprod_http_requests_total", {"route": "/orders", "method": "GET", "status": "500"}
    ) == 5.0


def test_error_series_exist_before_first_error(toyprod_server):
    assert toyprod_server.sample("toyprod_http_request_errors_total", {"route": "/orders", "method": "GET"}) == 0.0
    assert toyprod_server.sample("toyprod_http_request_errors_total", {"route": "/orders", "method": "POST"}) == 0.0


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"latency_ms": -10}, "latency_ms", "got -10"),
        ({"sine_amplitude_ms": 70_000}, "sine_amplitude_ms", "got 70000"),
        ({"sine_period_s": 0}, "sine_period_s", "got 0"),
        ({"error_rate": 2}, "error_rate", "got 2"),
        ({"error_rate": "lots"}, "error_rate", "valid number"),
        ({"latency": 100}, "latency", "Extra inputs are not permitted"),
    ],
)
def test_invalid_chaos_returns_422_naming_field(toyprod_server, body, field, message):
    response = toyprod_server.client.put("/chaos", json=body)

    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [error["loc"][-1] for error in errors] == [field]
    assert message in errors[0]["msg"]
    assert toyprod_server.client.get("/chaos").json()["latency_ms"] == 0.0


def test_partial_chaos_update_keeps_other_fields(toyprod_server):
    toyprod_server.client.put("/chaos", json={"latency_ms": 50, "error_rate": 0.1}).raise_for_status()

    response = toyprod_server.client.put("/chaos", json={"sine_amplitude_ms": 20, "sine_period_s": 5})

    assert response.status_code == 200
    assert response.json() == {"latency_ms": 50.0, "sine_amplitude_ms": 20.0, "sine_period_s": 5.0, "error_rate": 0.1}
    assert toyprod_server.client.get("/chaos").json() == response.json()


def test_delete_chaos_clears_every_fault(toyprod_server):
    toyprod_server.client.put("/chaos", json={"latency_ms": 50, "sine_amplitude_ms": 20, "error_rate": 1}).raise_for_status()

    response = toyprod_server.client.delete("/chaos")

    assert response.status_code == 200
    assert response.json() == {"latency_ms": 0.0, "sine_amplitude_ms": 0.0, "sine_period_s": 60.0, "error_rate": 0.0}
    assert toyprod_server.client.get("/orders").status_code == 200


def test_chaos_gauges_follow_settings(toyprod_server):
    toyprod_server.client.put(
        "/chaos", json={"latency_ms": 250, "sine_amplitude_ms": 100, "sine_period_s": 30, "error_rate": 0.25}
    ).raise_for_status()

    assert toyprod_server.sample("toyprod_chaos_latency_seconds", {}) == 0.25
    assert toyprod_server.sample("toyprod_chaos_sine_amplitude_seconds", {}) == 0.1
    assert toyprod_server.sample("toyprod_chaos_sine_period_seconds", {}) == 30.0
    assert toyprod_server.sample("toyprod_chaos_error_ratio", {}) == 0.25


def test_unknown_paths_share_one_route_label(toyprod_server):
    for path in ("/wp-admin", "/orders/1", "/.env"):
        assert toyprod_server.client.get(path).status_code == 404

    assert toyprod_server.sample("toyprod_http_requests_total", {"route": "unmatched", "status": "404"}) == 3.0
    for path in ("/wp-admin", "/orders/1", "/.env"):
        assert toyprod_server.sample("toyprod_http_requests_total", {"route": path}) is None
