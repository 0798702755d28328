import socket
import threading
import time

import pytest

from toyprod.load import LoadResult, run_load


def _closed_loopback_port() -> int:
    """Return a loopback port that nothing listens on (bound once by the OS, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_load_sends_rate_times_duration(toyprod_server):
    result = run_load(f"{toyprod_server.base_url}/orders", rate_per_s=20, duration_s=1, concurrency=8, progress=False)

    assert result.planned == 20
    assert result.sent == 20
    assert result.skipped == 0
    assert result.status_counts == {200: 20}
    assert 0.9 <= result.elapsed_s < 2.0
    assert toyprod_server.sample(
        "toyprod_http_requests_total", {"route": "/orders", "method": "GET", "status": "200"}
    ) == 20.0


def test_load_reports_injected_errors_and_latency(toyprod_server):
    toyprod_server.client.put("/chaos", json={"latency_ms": 100, "error_rate": 1}).raise_for_status()

    result = run_load(f"{toyprod_server.base_url}/orders", rate_per_s=10, duration_s=0.5, concurrency=8, progress=False)

    assert result.status_counts == {500: 5}
    assert result.server_errors == 5
    assert result.p50_s >= 0.1
    assert result.p99_s >= result.p95_s >= result.p50_s


def test_load_skips_requests_beyond_concurrency(toyprod_server):
    toyprod_server.client.put("/chaos", json={"latency_ms": 500}).raise_for_status()

    result = run_load(f"{toyprod_server.base_url}/orders", rate_per_s=20, duration_s=1, concurrency=2, progress=False)

    assert result.sent + result.skipped == 20
    assert 2 <= result.sent <= 6
    assert result.completed == result.sent


def test_load_stops_early_when_stop_event_is_set(toyprod_server):
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()

    started = time.perf_counter()
    result = run_load(
        f"{toyprod_server.base_url}/orders", rate_per_s=20, duration_s=60, concurrency=8, progress=False, stop_event=stop
    )
    elapsed_s = time.perf_counter() - started
    timer.cancel()

    assert result.planned == 1200
    assert 5 <= result.sent <= 15
    assert result.completed == result.sent
    assert elapsed_s < 2.0


def test_load_counts_connection_errors():
    url = f"http://127.0.0.1:{_closed_loopback_port()}/orders"

    result = run_load(url, rate_per_s=10, duration_s=0.5, concurrency=4, progress=False)

    assert result.errors == {"ConnectError": 5}
    assert result.completed == 0
    assert result.p95_s is None


@pytest.mark.parametrize(
    ("rate", "duration", "concurrency", "message"),
    [
        (0, 1, 1, "rate must be greater than 0 and at most 1000 requests/s, got 0"),
        (1001, 1, 1, "rate must be greater than 0 and at most 1000 requests/s, got 1001"),
        (10, 0, 1, "duration must be greater than 0 and at most 3600 s, got 0"),
        (10, 3601, 1, "duration must be greater than 0 and at most 3600 s, got 3601"),
        (10, 1, 0, "concurrency must be between 1 and 1000, got 0"),
    ],
)
def test_load_rejects_out_of_bounds_parameters(rate, duration, concurrency, message):
    with pytest.raises(ValueError) as info:
        run_load("http://127.0.0.1:1/orders", rate, duration, concurrency, progress=False)

    assert str(info.value) == message


def test_percentiles_use_nearest_rank():
    result = LoadResult(planned=100, latencies_s=[i / 1000 for i in range(100, 0, -1)])

    assert result.p50_s == 0.050
    assert result.p95_s == 0.095
    assert result.p99_s == 0.099
