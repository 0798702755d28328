"""Run a BentoML service as a supervised process on a loopback port.

The stack starts the gateway this way, and the tests start single services the same way, so a test exercises
the same `bentoml serve` that production runs.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opsseer.supervisor import Component, Supervisor

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = "bentos.gateway:Gateway"
STOP_GRACE_SECONDS = 5.0


def _ready(url: str) -> bool:
    # Imported here: opsseer.stack imports this module.
    from opsseer.stack import http_ok

    return http_ok(f"{url}/readyz")


def bento_component(
    service: str, port: int, *, name: str = "models", env: dict[str, str] | None = None, ready_timeout: float = 180.0
) -> Component:
    """Describe `bentoml serve SERVICE` on 127.0.0.1:PORT, ready when its /readyz returns 200."""
    url = f"http://127.0.0.1:{port}"
    # NOTE: `bentoml serve` of the gateway took about 40 s to exit after SIGTERM in every run here, while its
    # gateway worker (in a session of its own) ignored the signal, although each service logs its cleanup
    # within a second. The short grace bounds the wait; the supervisor then kills the whole process tree.
    return Component(
        name=name,
        argv=[sys.executable, "-m", "bentoml", "serve", service, "--host", "127.0.0.1", "--port", str(port)],
        env=env or {},
        url=url,
        ready=lambda: _ready(url),
        ready_timeout=ready_timeout,
        cwd=ROOT,
        stop_grace=STOP_GRACE_SECONDS,
    )




@contextmanager
def served(
    service: str,
    log_dir: Path,
    *,
    env: dict[str, str] | None = None,
    port: int | None = None,
    ready_timeout: float = 180.0,
) -> Iterator[str]:
    """Serve SERVICE (for example "bentos.forecaster.service:Forecaster") and yield its base URL.

    `ready_timeout` bounds the start-up in seconds; a service that indexes a large corpus needs more than the default.
    """
    from opsseer.stack import free_port

    supervisor = Supervisor(log_dir, echo=False)
    component = bento_component(
        service, port or free_port(), name=service.rsplit(":", 1)[-1].lower(), env=env, ready_timeout=ready_timeout
    )
    try:
        supervisor.start(component)
        yield component.url
    finally:
        supervisor.stop_all()
