"""Fixtures for the GitHub tests: the loopback fake GitHub and settings that point the real PyGithub client at it."""

from collections.abc import Iterator

import pytest

from functions.settings import get_settings
from functions.tasks import github as github_tasks
from tests.functions.github.fake_github import FakeGitHub
from tests.functions.github.github_helpers import REPOSITORY, github_env
from tests.functions.helpers import Trigger


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with FakeGitHub(repository=REPOSITORY) as fake:
        yield fake


@pytest.fixture
def configure(settings, monkeypatch):
    """Return a function that applies GitHub settings to this process; undone after the test."""

    def apply(fake: FakeGitHub, **overrides: str) -> None:
        for name, value in github_env(fake, **overrides).items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        github_tasks.github_client.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()
    github_tasks.github_client.cache_clear()


@pytest.fixture
def github(fake_github, configure) -> FakeGitHub:
    """The fake GitHub, with this process configured to use it."""
    configure(fake_github)
    return fake_github


@pytest.fixture
def trigger(settings, database) -> Trigger:
    return Trigger(settings, database)