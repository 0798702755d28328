"""End-to-end check of the demo profile with real processes on loopback ports.

toyprod (uvicorn subprocess) -> Prometheus (demo config) -> Alertmanager (demo config) -> a webhook
receiver in this test process. Takes about a minute.
"""

import json
import logging
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from alerting import render
from toyprod.load import run_load

logger = logging.getLogger(__name__)

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
REPO_ROOT = Path(render.__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or ALERTMANAGER is None,
    reason="needs the prometheus and alertmanager binaries (Debian packages prometheus, prometheus-alertmanager)",
)

STARTUP_TIMEOUT_S = 30.0
INJECTED_LATENCY_MS = 400
LOAD_RATE_PER_S = 20
WEBHOOK_TOKEN = "live-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.25) -> float | None:
    """Poll `predicate` until it is true and return the seconds that took, or None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if predicate():
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(interval_s)
    return None


@contextmanager
def _process(args: list[str], log_path: Path) -> Iterator[subprocess.Popen]:
    """Run `args` with output to `log_path`, and terminate that process (and only it) on exit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


class _WebhookReceiver(ThreadingHTTPServer):
    """Collects Alertmanager webhook posts as (monotonic time, Authorization header, JSON body)."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, str | None, dict]] = []
        super().__init__(("127.0.0.1", 0), _WebhookHandler)

    def statuses_for(self, alertname: str) -> list[str]:
        return [
            alert["status"]
            for _, _, body in self.posts
            for alert in body["alerts"]
            if alert["labels"]["alertname"] == alertname
        ]


class _WebhookHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (name fixed by http.server)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.posts.append((time.monotonic(), self.headers.get("Authorization"), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("webhook receiver: " + format, *args)


def _query(prometheus_url: str, expr: str) -> list[dict]:
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=5.0)
    response.raise_for_status()
    return response.json()["data"]["result"]


def test_demo_pipeline_pages_and_resolves_latency_fault(tmp_path):
    toyprod_port, prometheus_port, alertmanager_port = _free_port(), _free_port(), _free_port()
    toyprod_url = f"http://127.0.0.1:{toyprod_port}"
    prometheus_url = f"http://127.0.0.1:{prometheus_port}"
    receiver = _WebhookReceiver()
    threading.Thread(target=receiver.serve_forever, name="webhook-receiver", daemon=True).start()
    token_file = tmp_path / "token"
    token_file.write_text(WEBHOOK_TOKEN, encoding="utf-8")

    # Nothing listens on the API and Flower ports, so those scrape targets are down.
    prometheus_config = render.write_prometheus_config(
        tmp_path / "prometheus",
        profile="demo",
        prometheus_port=prometheus_port,
        alertmanager_port=alertmanager_port,
        toyprod_port=toyprod_port,
        api_port=_free_port(),
        flower_port=_free_port(),
    )
    alertmanager_config = render.write_alertmanager_config(
        tmp_path / "alertmanager",
        profile="demo",
        webhook_url=f"http://127.0.0.1:{receiver.server_address[1]}/api/v1/alertmanager",
        token_file=token_file,
    )

    toyprod_args = [sys.executable, "-m", "uvicorn", "toyprod.app:create_app", "--factory",
                    "--host", "127.0.0.1", "--port", str(toyprod_port), "--log-level", "warning"]
    prometheus_args = [PROMETHEUS, f"--config.file={prometheus_config}",
                       f"--web.listen-address=127.0.0.1:{prometheus_port}",
                       f"--storage.tsdb.path={tmp_path / 'tsdb'}"]
    alertmanager_args = [ALERTMANAGER, f"--config.file={alertmanager_config}",
                         f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                         f"--storage.path={tmp_path / 'alertmanager-data'}", "--cluster.listen-address="]

    stop_load = threading.Event()
    load_thread = threading.Thread(
        target=run_load,
        kwargs={
            "url": f"{toyprod_url}/orders",
            "rate_per_s": LOAD_RATE_PER_S,
            "duration_s": 600,
            "concurrency": 32,
            "progress": False,
            "stop_event": stop_load,
        },
        name="load",
        daemon=True,
    )
    with (
        _process(toyprod_args, tmp_path / "toyprod.log"),
        _process(alertmanager_args, tmp_path / "alertmanager.log"),
        _process(prometheus_args, tmp_path / "prometheus.log"),
    ):
        try:
            assert _wait_until(lambda: httpx.get(f"{toyprod_url}/healthz").is_success, STARTUP_TIMEOUT_S) is not None
            assert _wait_until(lambda: httpx.get(f"{prometheus_url}/-/ready").is_success, STARTUP_TIMEOUT_S) is not None
            load_thread.start()

            # Baseline: the 30s p95 exists and is under the threshold before the fault.
            baseline = "sli:toyprod_request_latency_seconds:p95_rate30s < 0.25"
            assert _wait_until(lambda: bool(_query(prometheus_url, baseline)), STARTUP_TIMEOUT_S) is not None

            httpx.put(f"{toyprod_url}/chaos", json={"latency_ms": INJECTED_LATENCY_MS}).raise_for_status()
            fault_at = time.monotonic()

            breach = "sli:toyprod_request_latency_seconds:p95_rate30s > 0.25"
            sli_s = _wait_until(lambda: bool(_query(prometheus_url, breach)), 30)
            assert sli_s is not None, "p95 SLI did not exceed 0.25 s within 30 s of the fault"

            firing_s = _wait_until(lambda: "firing" in receiver.statuses_for("ToyprodLatencySLOBreach"), 40)
            assert firing_s is not None, "no firing webhook within 40 s of the fault"
            firing_s = time.monotonic() - fault_at

            httpx.delete(f"{toyprod_url}/chaos").raise_for_status()
            resolved_s = _wait_until(lambda: "resolved" in receiver.statuses_for("ToyprodLatencySLOBreach"), 60)
            assert resolved_s is not None, "no resolved webhook within 60 s of recovery"
            logger.info("SLI over threshold after %.1fs, firing webhook after %.1fs, resolved webhook %.1fs "
                        "after recovery", sli_s, firing_s, resolved_s)
        finally:
            stop_load.set()
            if load_thread.is_alive():
                load_thread.join(10)
            receiver.shutdown()
            receiver.server_close()

    authorizations = {authorization for _, authorization, _ in receiver.posts}
    assert authorizations == {f"Bearer {WEBHOOK_TOKEN}"}
    first_alert = receiver.posts[0][2]["alerts"][0]
    assert first_alert["labels"]["severity"] == "page"
    assert first_alert["labels"]["service"] == "toyprod"
    assert first_alert["annotations"]["runbook_url"].endswith("/ToyprodLatencySLOBreach.md")
