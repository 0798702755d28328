"""Session fixtures: real PostgreSQL and Redis (and, on demand, Prometheus, Alertmanager and a Celery worker)
started on free loopback ports through the same Stack code that `opsseer up` uses."""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

import functions.github.models  # noqa: F401 - registers the GitHub tables on Base.metadata
from functions.db import Database
from functions.models import Base
from functions.prometheus import PrometheusClient
from functions.settings import Settings, get_settings
from opsseer.bento import GATEWAY, served
from opsseer.postgres import remove_cluster
from opsseer.stack import Ports, Stack

TEST_TOKEN = "test-webhook-token"

# No model hub is reachable from tests: models load from local directories and packages only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Retries in tests are short and few, so failure paths finish in seconds.
TEST_ENV = {
    "OPSSEER_TASK_MAX_RETRIES": "2",
    "OPSSEER_TASK_RETRY_BACKOFF_SECONDS": "0.2",
    "OPSSEER_TASK_RETRY_BACKOFF_MAX_SECONDS": "1",
    "OPSSEER_WEBHOOK_TOKEN": TEST_TOKEN,
}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack on free ports; each test module starts only the components it needs."""
    state_dir: Path = tmp_path_factory.mktemp("stack")
    saved = dict(os.environ)
    os.environ.update(TEST_ENV)
    stack = Stack(state_dir, profile="demo", ports=Ports.free(), echo=False, fast_unsafe_postgres=True)
    stack.start_postgres()
    stack.start_redis()
    os.environ.update(stack.settings_env())
    get_settings.cache_clear()
    yield stack
    stack.stop()
    remove_cluster(stack.cluster)
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def session_database(stack: Stack) -> Iterator[Database]:
    database = Database(stack.database_url)
    yield database
    database.dispose()


@pytest.fixture
def database(session_database: Database) -> Database:
    """The incident store, emptied before the test."""
    with session_database.session() as session:
        # A session a previous test leaked would block TRUNCATE forever; fail fast and loudly instead.
        session.execute(text("SET LOCAL lock_timeout = '10s'"))
        tables = ", ".join(Base.metadata.tables)
        session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return session_database


def _started(stack: Stack, name: str, start) -> Stack:
    if not any(process.name == name for process in stack.supervisor.processes):
        start()
    return stack


@pytest.fixture(scope="session")
def gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The model gateway served by `bentoml serve` with the offline models, its URL handed to the worker.

    The forecaster uses the statistical backend here, so pipeline tests get deterministic forecasts;
    the Chronos loading path has its own tests.
    """
    env = {"OPSSEER_FORECAST_BACKEND": "statistical"}
    with served(GATEWAY, tmp_path_factory.mktemp("gateway-logs"), env=env) as url:
        stack.models_url = url
        yield url
        stack.models_url = None


@pytest.fixture(scope="session")
def worker(stack: Stack, gateway: str) -> Stack:
    """A real Celery worker process consuming from the test Redis and calling the model gateway."""
    return _started(stack, "worker", stack.start_worker)


@pytest.fixture(scope="session")
def toyprod(stack: Stack) -> Stack:
    return _started(stack, "toyprod", stack.start_toyprod)


@pytest.fixture(scope="session")
def prometheus(toyprod: Stack) -> Stack:
    """Prometheus with the demo profile, after its first successful scrape of toyprod."""
    _started(toyprod, "prometheus", toyprod.start_prometheus)
    with PrometheusClient(toyprod.urls["prometheus"]) as client:
        deadline = time.monotonic() + 30
        while not client.query('up{job="toyprod"} == 1'):
            assert time.monotonic() < deadline, "Prometheus did not scrape toyprod within 30 s"
            time.sleep(0.5)
    return toyprod


@pytest.fixture
def prometheus_history(prometheus: Stack) -> Stack:
    """Wait until Prometheus contains at least 20 s of toyprod's `up`, enough context for the forecaster."""
    with PrometheusClient(prometheus.urls["prometheus"]) as client:
        deadline = time.monotonic() + 60
        while not client.query('count_over_time(up{job="toyprod"}[1m]) >= 20'):
            assert time.monotonic() < deadline, "Prometheus contains less than 20 s of history after 60 s"
            time.sleep(1)
    return prometheus


@pytest.fixture(scope="session")
def api(stack: Stack) -> Stack:
    """The trigger and portal server process, started once for every test that needs Alertmanager to reach it."""
    return _started(stack, "api", stack.start_api)


@pytest.fixture(scope="session")
def alertmanager(api: Stack) -> Stack:
    """Alertmanager with the demo profile, delivering to the api fixture's trigger."""
    return _started(api, "alertmanager", api.start_alertmanager)


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The public evaluation corpus (OPSSEER_CORPUS_DIR); tests that read it skip, naming the path, without it."""
    path = Path(os.environ.get("OPSSEER_CORPUS_DIR", "")).expanduser()
    if not os.environ.get("OPSSEER_CORPUS_DIR") or not path.is_dir():
        pytest.skip(f"evaluation corpus not found: set OPSSEER_CORPUS_DIR (now {str(path) or 'unset'!r})")
    return path
