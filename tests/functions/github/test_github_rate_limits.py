"""Rate limits become Celery retries after GitHub's wait; permission and not-found errors fail at once."""

import time

import pytest
from sqlalchemy import select

from functions.github.client import rate_limit_wait
from functions.models import FunctionRun
from functions.tasks import github as github_tasks
from tests.functions.github.github_helpers import github_entries, open_episode, recorded_retries

ISSUES = r"/repos/acme/incidents/issues"
SECONDARY = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
             "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}
PRIMARY = {"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}


def _primary_headers(reset_in: int) -> dict[str, str]:
    return {"X-RateLimit-Remaining": "0", "X-RateLimit-Used": "5000", "X-RateLimit-Reset": str(int(time.time()) + reset_in)}


def _open_with_fault(trigger, github, status: int, headers: dict[str, str], body: dict) -> list[float]:
    episode_id = open_episode(trigger)
    github.fault("POST", ISSUES, status=status, headers=headers, body=body)
    with recorded_retries() as countdowns:
        result = github_tasks.sync_github_issue.apply(args=[episode_id]).get()
    assert result["status"] == "ok"
    assert len(github.real_issues()) == 1
    assert github.count("POST", ISSUES) == 2
    return countdowns


def test_primary_limit_waits_until_reset(trigger, database, github):
    countdowns = _open_with_fault(trigger, github, 403, _primary_headers(reset_in=20), PRIMARY)

    assert len(countdowns) == 1
    assert 18 <= countdowns[0] <= 20


def test_primary_limit_wait_is_capped(trigger, database, github):
    countdowns = _open_with_fault(trigger, github, 403, _primary_headers(reset_in=3000), PRIMARY)

    assert countdowns == [30]


def test_secondary_429_with_retry_after(trigger, database, github):
    assert _open_with_fault(trigger, github, 429, {"Retry-After": "7"}, SECONDARY) == [7]


def test_secondary_403_with_retry_after(trigger, database, github):
    assert _open_with_fault(trigger, github, 403, {"Retry-After": "12"}, SECONDARY) == [12]


def test_secondary_403_without_retry_after(trigger, database, github, configure):
    configure(github, OPSSEER_GITHUB_RATE_LIMIT_MAX_WAIT_SECONDS="900")

    assert _open_with_fault(trigger, github, 403, {}, SECONDARY) == [60]


def test_bare_429_without_retry_after(trigger, database, github, configure):
    configure(github, OPSSEER_GITHUB_RATE_LIMIT_MAX_WAIT_SECONDS="900")

    assert _open_with_fault(trigger, github, 429, {}, {"message": "Too Many Requests"}) == [60]


def test_rate_limit_retries_run_out(trigger, database, github, configure):
    configure(github, OPSSEER_GITHUB_RATE_LIMIT_MAX_RETRIES="2")
    episode_id = open_episode(trigger)
    github.fault("POST", ISSUES, status=429, headers={"Retry-After": "5"}, body=SECONDARY, times=10)

    with recorded_retries() as countdowns:
        result = github_tasks.sync_github_issue.apply(args=[episode_id]).get()

    assert result["status"] == "failed"
    assert countdowns == [5, 5]
    [entry] = github_entries(database)
    assert entry.status == "failed"
    assert "after 3 attempts" in entry.title
    assert "secondary rate limit" in entry.title
    assert github.real_issues() == []


@pytest.mark.parametrize(
    ("status", "headers", "message", "expected"),
    [
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1060"}, "API rate limit exceeded", (60.0, "primary")),
        (429, {"retry-after": "3"}, "", (3.0, "secondary")),
        (403, {"retry-after": "Thu, 01 Jan 1970 00:17:50 GMT"}, "", (70.0, "secondary")),
        (403, {"x-ratelimit-remaining": "12"}, "You have exceeded a secondary rate limit", (60.0, "secondary")),
        (403, {"x-ratelimit-remaining": "12"}, "Resource not accessible by integration", None),
        (401, {"retry-after": "3"}, "Bad credentials", None),
    ],
)
def test_rate_limit_signals(status, headers, message, expected):
    assert rate_limit_wait(status, headers, message, now=1000.0) == expected


def test_read_only_token_fails_naming_scope(trigger, database, github, configure):
    github.read_only_tokens.add("ghp_read_only")
    configure(github, OPSSEER_GITHUB_TOKEN="ghp_read_only")
    episode_id = open_episode(trigger)

    with recorded_retries() as countdowns:
        result = github_tasks.sync_github_issue.apply(args=[episode_id]).get()

    assert result["status"] == "failed"
    assert countdowns == []
    [entry] = github_entries(database)
    assert entry.status == "failed"
    assert "403 Resource not accessible by personal access token" in entry.title
    assert "repo scope" in entry.title
    assert "Issues: read and write" in entry.title
    assert entry.payload["attempts"] == 1
    assert github.count("POST", ISSUES) == 1
    with database.session() as session:
        assert session.scalars(select(FunctionRun.state)).all() == ["failed"]


def test_bad_token_fails_naming_setting(trigger, database, github, configure):
    configure(github, OPSSEER_GITHUB_TOKEN="ghp_revoked")
    episode_id = open_episode(trigger)

    result = github_tasks.sync_github_issue.apply(args=[episode_id]).get()

    assert result["status"] == "failed"
    [entry] = github_entries(database)
    assert "401 Bad credentials" in entry.title
    assert "set OPSSEER_GITHUB_TOKEN to a valid token" in entry.title
    assert "ghp_revoked" not in entry.title
    assert github.count("POST", ISSUES) == 1


def test_missing_repository_fails_naming_setting(trigger, database, github, configure):
    configure(github, OPSSEER_GITHUB_REPOSITORY="acme/no-such-repo")
    episode_id = open_episode(trigger)

    result = github_tasks.sync_github_issue.apply(args=[episode_id]).get()

    assert result["status"] == "failed"
    [entry] = github_entries(database)
    assert "acme/no-such-repo" in entry.title
    assert "404 Not Found" in entry.title
    assert "check OPSSEER_GITHUB_REPOSITORY" in entry.title
    assert github.count("POST", r"/repos/acme/no-such-repo/issues") == 1
