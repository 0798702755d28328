"""Fixtures for the Slack tests: the loopback fake Slack and the OPSSEER_SLACK_* settings pointing at it."""

import os
from collections.abc import Iterator

import pytest

from functions.model_services import get_model_services
from functions.settings import Settings, get_settings
from tests.functions.slack.fake_slack import BOT_TOKEN, CHANNEL_ID, FakeSlack

SIGNING_SECRET = "test-signing-secret"


def slack_env(fake: FakeSlack) -> dict[str, str]:
    return {
        "OPSSEER_SLACK_BOT_TOKEN": BOT_TOKEN,
        "OPSSEER_SLACK_CHANNEL": CHANNEL_ID,
        "OPSSEER_SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "OPSSEER_SLACK_API_URL": fake.api_url,
        "OPSSEER_SLACK_TIMEOUT_SECONDS": "1",
        "OPSSEER_SLACK_POST_LEASE_SECONDS": "5",
    }


@pytest.fixture(scope="session")
def fake_slack_server() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    yield fake
    fake.close()


@pytest.fixture
def fake_slack(fake_slack_server: FakeSlack) -> FakeSlack:
    fake_slack_server.reset()
    return fake_slack_server


@pytest.fixture
def slack_settings(stack, fake_slack: FakeSlack) -> Iterator[Settings]:
    """Settings with Slack configured against the fake, restored after the test."""
    env = slack_env(fake_slack)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    get_settings.cache_clear()
    get_model_services.cache_clear()
    yield get_settings()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()
    get_model_services.cache_clear()
