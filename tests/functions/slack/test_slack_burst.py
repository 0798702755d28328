"""A burst of incidents through the real trigger and a real Celery worker, with Slack rate-limiting every first post."""

import sys
import time
from collections.abc import Iterator

import pytest
from kombu import Connection
from sqlalchemy import func, select

from functions.models import SlackMessage, TimelineEntry
from functions.tasks import pipelines
from opsseer.stack import free_port
from opsseer.supervisor import Component, Supervisor
from tests.functions.helpers import Trigger, alert, payload
from tests.functions.slack.conftest import slack_env

BURST = 30


@pytest.fixture(scope="module")
def slack_worker(stack, fake_slack_server, tmp_path_factory) -> Iterator[str]:
    """A Celery worker with Slack configured, on its own Redis database so the session's worker never receives its tasks."""
    broker_url = stack.broker_url.rsplit("/", 1)[0] + "/3"
    supervisor = Supervisor(tmp_path_factory.mktemp("slack-worker"), echo=False)
    env = {
        **stack.settings_env(),
        **slack_env(fake_slack_server),
        "OPSSEER_BROKER_URL": broker_url,
        # Nothing listens here, so the snapshot step fails fast and the pipeline goes on.
        "OPSSEER_PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}",
        "OPSSEER_PROMETHEUS_TIMEOUT_SECONDS": "1",
    }
    supervisor.start(
        Component(
            name="slack-worker",
            argv=[sys.executable, "-m", "celery", "-A", "functions.celery_app", "worker", "--loglevel=INFO",
                  "--concurrency=2", "--hostname=slack-worker@opsseer", "--without-gossip", "--without-mingle"],
            env=env,
            ready_log=r"slack-worker@opsseer ready\.",
            ready_timeout=90,
        )
    )
    yield broker_url
    supervisor.stop_all()


def test_burst_posts_one_root_per_episode(slack_worker, settings, database, fake_slack):
    fake_slack.rate_limit_first_post = 1
    trigger = Trigger(settings, database)
    with Connection(slack_worker) as connection:
        trigger.app.state.enqueue = lambda opened, resolved: pipelines.start_episode_pipelines.apply_async(
            args=[opened, resolved], connection=connection
        )
        alerts = [alert(name=f"Burst{index}", fingerprint=f"fp-burst-{index}") for index in range(BURST)]
        for start in range(0, BURST, 10):
            trigger.send(payload(*alerts[start : start + 10]))
        # One of them is delivered again, as Alertmanager does after group_interval.
        trigger.send(payload(alerts[0]))

    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        with database.session() as session:
            done = session.scalar(select(func.count()).select_from(TimelineEntry).where(TimelineEntry.kind == "summary"))
        if done == BURST:
            break
        time.sleep(1)

    with database.session() as session:
        statuses = session.execute(
            select(TimelineEntry.status, func.count()).where(TimelineEntry.kind == "slack").group_by(TimelineEntry.status)
        ).all()
        posted = session.scalar(select(func.count()).select_from(SlackMessage).where(SlackMessage.ts.is_not(None)))
    roots = fake_slack.roots()
    assert done == BURST
    assert dict(statuses) == {"ok": BURST}
    assert posted == BURST
    assert len(roots) == BURST
    assert len({root["metadata"]["event_payload"]["key"] for root in roots}) == BURST
    posts = fake_slack.calls_of("chat.postMessage")
    assert len(posts) == 2 * BURST
    # Each key's second post came at least Retry-After (1 s) after its 429.
    first_at: dict[str, float] = {}
    for call in posts:
        key = call["body"]["metadata"]["event_payload"]["key"]
        if key in first_at:
            assert call["at"] - first_at[key] >= 0.95
        else:
            first_at[key] = call["at"]
