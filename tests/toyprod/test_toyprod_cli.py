import socket

from click.testing import CliRunner

from toyprod.cli import chaos_command, load_command, toyprod_command


def test_chaos_command_sets_and_prints_faults(toyprod_server):
    result = CliRunner().invoke(chaos_command, ["--url", toyprod_server.base_url, "--latency-ms", "120", "--error-rate", "0.1"])

    assert result.exit_code == 0, result.output
    assert "latency_ms" in result.output
    assert "120" in result.output
    assert toyprod_server.client.get("/chaos").json() == {
        "latency_ms": 120.0, "sine_amplitude_ms": 0.0, "sine_period_s": 60.0, "error_rate": 0.1,
    }


def test_chaos_command_clear_removes_faults(toyprod_server):
    toyprod_server.client.put("/chaos", json={"latency_ms": 80, "error_rate": 0.5}).raise_for_status()

    result = CliRunner().invoke(chaos_command, ["--url", toyprod_server.base_url, "--clear"])

    assert result.exit_code == 0, result.output
    assert toyprod_server.client.get("/chaos").json()["latency_ms"] == 0.0
    assert toyprod_server.client.get("/chaos").json()["error_rate"] == 0.0


def test_chaos_command_reports_rejected_value(toyprod_server):
    result = CliRunner().invoke(chaos_command, ["--url", toyprod_server.base_url, "--error-rate", "3"])

    assert result.exit_code == 1
    assert "error_rate: error_rate must be a fraction between 0 and 1, got 3" in result.output


def test_chaos_command_rejects_clear_with_other_options():
    result = CliRunner().invoke(chaos_command, ["--url", "http://127.0.0.1:1", "--clear", "--latency-ms", "5"])

    assert result.exit_code == 2
    assert "cannot be combined" in result.output


def test_chaos_command_reports_unreachable_toyprod():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    result = CliRunner().invoke(chaos_command, ["--url", url])

    assert result.exit_code == 1
    assert f"toyprod is not reachable at {url}/chaos" in result.output
    assert "opsseer toyprod" in result.output


def test_load_command_prints_summary(toyprod_server):
    args = ["--url", f"{toyprod_server.base_url}/orders", "--rate", "10", "--duration", "0.5", "--no-progress"]

    result = CliRunner().invoke(load_command, args)

    assert result.exit_code == 0, result.output
    assert "status 200" in result.output
    assert "latency p95" in result.output


def test_load_command_rejects_unbounded_rate():
    result = CliRunner().invoke(load_command, ["--rate", "5000", "--duration", "1"])

    assert result.exit_code == 2
    assert "rate must be greater than 0 and at most 1000 requests/s, got 5000" in result.output


def test_toyprod_command_rejects_invalid_initial_chaos():
    result = CliRunner().invoke(toyprod_command, ["--port", "1", "--error-rate", "1.5"])

    assert result.exit_code == 2
    assert "error_rate must be a fraction between 0 and 1, got 1.5" in result.output
