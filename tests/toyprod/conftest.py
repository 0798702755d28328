"""Fixtures that run toyprod on a real uvicorn server bound to a loopback port."""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from toyprod.app import create_app

SERVER_START_TIMEOUT_S = 10.0


@dataclass
class RunningToyprod:
    base_url: str
    client: httpx.Client

    def sample(self, name: str, labels: dict[str, str]) -> float | None:
        """Return the value of one sample from /metrics whose labels include `labels`, or None."""
        text = self.client.get("/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    return sample.value
        return None


@pytest.fixture
def toyprod_server() -> Iterator[RunningToyprod]:
    """Serve a fresh toyprod app on 127.0.0.1 with an OS-assigned port, in a background thread."""
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="toyprod-uvicorn", daemon=True)
    thread.start()

    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started and time.monotonic() < deadline:
        thread.join(0.05)
    assert server.started, f"toyprod did not start within {SERVER_START_TIMEOUT_S:g} s"

    port = server.servers[0].sockets[0].getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        yield RunningToyprod(base_url=base_url, client=client)

    server.should_exit = True
    thread.join(SERVER_START_TIMEOUT_S)
