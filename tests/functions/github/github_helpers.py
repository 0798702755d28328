"""Helpers for the GitHub tests: settings for the fake, episodes through the real trigger, stored rows."""

from collections.abc import Iterator
from contextlib import contextmanager

from celery.signals import task_retry
from sqlalchemy import select

from functions.github.models import GitHubIssue
from functions.models import TimelineEntry
from tests.functions.github.fake_github import FakeGitHub
from tests.functions.helpers import Trigger, alert, payload

REPOSITORY = "acme/incidents"


def github_env(fake: FakeGitHub, **overrides: str) -> dict[str, str]:
    """OPSSEER_GITHUB_* variables for the fake: short timeouts, no write pauses, waits capped at 30 s."""
    return {
        "OPSSEER_GITHUB_TOKEN": fake.token,
        "OPSSEER_GITHUB_REPOSITORY": fake.repository,
        "OPSSEER_GITHUB_API_URL": fake.url,
        "OPSSEER_GITHUB_LABELS": "incident,sev:critical",
        "OPSSEER_GITHUB_ASSIGNEES": "alice,bob",
        "OPSSEER_GITHUB_TIMEOUT_SECONDS": "1",
        "OPSSEER_GITHUB_SECONDS_BETWEEN_REQUESTS": "0",
        "OPSSEER_GITHUB_SECONDS_BETWEEN_WRITES": "0",
        "OPSSEER_GITHUB_RATE_LIMIT_MAX_WAIT_SECONDS": "30",
        **overrides,
    }


def open_episode(trigger: Trigger, **alert_kwargs) -> int:
    """Send a firing alert through the real trigger and return the new episode's id."""
    return trigger.send(payload(alert(**alert_kwargs)))["opened_episodes"][0]


def github_entries(database, episode_id: int | None = None) -> list[TimelineEntry]:
    with database.session() as session:
        query = select(TimelineEntry).where(TimelineEntry.kind == "github").order_by(TimelineEntry.id)
        if episode_id is not None:
            query = query.where(TimelineEntry.episode_id == episode_id)
        return list(session.scalars(query).all())


def issue_rows(database) -> list[GitHubIssue]:
    with database.session() as session:
        return list(session.scalars(select(GitHubIssue).order_by(GitHubIssue.id)).all())



@contextmanager
def recorded_retries() -> Iterator[list[float]]:
    """Collect the countdown of every Celery retry scheduled in this process (the task_retry signal)."""
    countdowns: list[float] = []

    def on_retry(sender=None, request=None, reason=None, einfo=None, **kwargs) -> None:
        countdowns.append(reason.when)

    task_retry.connect(on_retry, weak=False)
    try:
        yield countdowns
    finally:
        task_retry.disconnect(on_retry)
