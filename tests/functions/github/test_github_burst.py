"""A burst of incidents through the real trigger and a real Celery worker, with GitHub rate-limiting the creates."""

import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import select

from functions.models import FunctionRun, TimelineEntry
from functions.triggers import WEBHOOK_PATH
from opsseer.stack import free_port, http_ok
from opsseer.supervisor import Component, Supervisor
from tests.functions.github.fake_github import FakeGitHub
from tests.functions.github.github_helpers import REPOSITORY, github_env
from tests.functions.helpers import alert, payload

INCIDENTS = 30
ISSUES = r"/repos/acme/incidents/issues"
SECONDARY = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}


def _github_outcomes(database) -> dict[str, int]:
    with database.session() as session:
        rows = session.execute(
            select(TimelineEntry.status, TimelineEntry.payload["step"].astext).where(TimelineEntry.kind == "github")
        ).all()
    outcomes: dict[str, int] = {}
    for status, step in rows:
        outcomes[f"{step}:{status}"] = outcomes.get(f"{step}:{status}", 0) + 1
    return outcomes


def test_burst_with_429s_yields_one_issue_each(stack, database, tmp_path):
    with FakeGitHub(repository=REPOSITORY) as fake:
        # Secondary limits on 12 creates: 8 with Retry-After, then 4 without, whose 60 s wait the setting caps at 1 s.
        fake.fault("POST", ISSUES, status=429, headers={"Retry-After": "1"}, body=SECONDARY, times=8)
        fake.fault("POST", ISSUES, status=403, body=SECONDARY, times=4)
        api_port = free_port()
        # A Redis database of its own keeps the session's shared worker, which has no GitHub settings, away.
        env = {
            **stack.settings_env(),
            **github_env(fake, OPSSEER_GITHUB_RATE_LIMIT_MAX_WAIT_SECONDS="1", OPSSEER_GITHUB_TIMEOUT_SECONDS="5"),
            "OPSSEER_BROKER_URL": stack.broker_url.rsplit("/", 1)[0] + "/3",
        }
        supervisor = Supervisor(tmp_path / "logs", echo=False)
        try:
            supervisor.start(Component(
                "github-worker",
                [sys.executable, "-m", "celery", "-A", "functions.celery_app", "worker", "--loglevel=INFO", "--concurrency=2",
                 "--hostname=github-burst@opsseer", "--without-gossip", "--without-mingle"],
                env=env, ready_log=r"github-burst@opsseer ready\.", ready_timeout=90,
            ))
            api_url = f"http://127.0.0.1:{api_port}"
            supervisor.start(Component(
                "github-api", [sys.executable, "-m", "opsseer", "api", "--host", "127.0.0.1", "--port", str(api_port)],
                env=env, url=api_url, ready=lambda: http_ok(f"{api_url}/healthz"),
            ))

            headers = {"Authorization": f"Bearer {env['OPSSEER_WEBHOOK_TOKEN']}"}
            with httpx.Client(base_url=api_url, headers=headers, timeout=10) as client, ThreadPoolExecutor(8) as pool:
                bodies = [payload(alert(name=f"Burst{n}", fingerprint=f"fp-burst-{n}")) for n in range(INCIDENTS)]
                statuses = list(pool.map(lambda body: client.post(WEBHOOK_PATH, json=body).status_code, bodies))
            assert statuses == [200] * INCIDENTS

            deadline = time.monotonic() + 90
            while _github_outcomes(database).get("github:ok", 0) < INCIDENTS and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            supervisor.stop_all()

        assert _github_outcomes(database) == {"github:ok": INCIDENTS}
        issues = fake.real_issues()
        assert len(issues) == INCIDENTS
        markers = {issue["body"].splitlines()[0] for issue in issues}
        assert len(markers) == INCIDENTS
        assert fake.count("POST", ISSUES) == INCIDENTS + 12
        with database.session() as session:
            retried = session.scalars(
                select(FunctionRun.error).where(FunctionRun.task_name == "opsseer.sync_github_issue", FunctionRun.state == "retrying")
            ).all()
        assert len(retried) == 12
        assert all("secondary rate limit" in error for error in retried)
