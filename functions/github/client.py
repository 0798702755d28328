"""A small GitHub issues client on PyGithub, with explicit timeouts, no sleeping retries and typed errors.

PyGithub's own retry (urllib3 `GithubRetry`) sleeps inside the call until a rate limit resets, which can
block a worker for up to an hour, and it retries POST after a read timeout, which can create a second
issue. Both are disabled (`retry=None`): every failure is raised as a typed error from
`functions.github.errors`, and the Celery task decides when to try again.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from github import Auth, Github, GithubException

from functions.github.errors import GitHubUnavailable, NotFound, PermissionDenied, RateLimited, Rejected
from functions.settings import Settings

logger = logging.getLogger(__name__)

# GitHub's REST documentation recommends waiting at least one minute after a secondary rate limit without Retry-After.
SECONDARY_RATE_LIMIT_WAIT_SECONDS = 60.0
# Items read per marker lookup: the marker is searched right after a failed create, so it is among the newest.
LOOKUP_PAGE_SIZE = 50

TOKEN_FIX = (
    "give OPSSEER_GITHUB_TOKEN write access to issues: a classic token needs the repo scope "
    "(public_repo for a public repository), a fine-grained token needs Issues: read and write on the repository"
)


@dataclass(frozen=True)
class IssueRef:
    number: int
    html_url: str
    state: str


@dataclass(frozen=True)
class CommentRef:
    id: int
    html_url: str


def _lower_headers(headers: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in (headers or {}).items()}


def _retry_after_seconds(value: str, now: float) -> float | None:
    """Parse Retry-After, which is either delta-seconds or an HTTP date."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def rate_limit_wait(status: int, headers: dict[str, str], message: str, *, now: float) -> tuple[float, str] | None:
    """Return (seconds to wait, "primary" or "secondary") when a response is a rate limit, else None.

    Follows GitHub's REST documentation: Retry-After wins; x-ratelimit-remaining 0 waits until
    x-ratelimit-reset (epoch seconds); a 403 or 429 naming a secondary rate limit waits one minute.
    """
    if status not in (403, 429):
        return None
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        seconds = _retry_after_seconds(retry_after, now)
        if seconds is not None:
            return seconds, "secondary"
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset", "").isdigit():
        return max(1.0, float(headers["x-ratelimit-reset"]) - now), "primary"
    lowered = message.lower()
    if status == 429 or "rate limit" in lowered or "abuse" in lowered:
        return SECONDARY_RATE_LIMIT_WAIT_SECONDS, "secondary"
    return None


def translate_error(exc: GithubException, *, action: str, repository: str) -> Exception:
    """Map a PyGithub error to the integration's error tree, naming the failed call and the fix."""
    headers = _lower_headers(exc.headers)
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.message or "")
    status = exc.status
    request_id = headers.get("x-github-request-id")
    detail = f"{status} {message}".strip() + (f", request id {request_id}" if request_id else "")

    wait = rate_limit_wait(status, headers, message, now=time.time())
    if wait is not None:
        seconds, limit = wait
        return RateLimited(f"GitHub {limit} rate limit on {action} ({detail}): retrying in {seconds:.0f} s", retry_after=seconds, limit=limit)
    if status == 401:
        return PermissionDenied(f"GitHub rejected the token on {action} ({detail}): set OPSSEER_GITHUB_TOKEN to a valid token")
    if status == 403:
        return PermissionDenied(f"GitHub denied {action} in {repository} ({detail}): {TOKEN_FIX}")
    if status in (404, 410):
        return NotFound(
            f"GitHub found nothing for {action} in {repository} ({detail}): check OPSSEER_GITHUB_REPOSITORY "
            f"(owner/name) and that the token can see the repository"
        )
    if status >= 500:
        return GitHubUnavailable(f"GitHub failed on {action} ({detail})")
    errors = data.get("errors")
    return Rejected(f"GitHub rejected {action} in {repository} ({detail}{f', errors {errors}' if errors else ''})")


class GitHubClient:
    """Issues of one repository through PyGithub, against GitHub or GitHub Enterprise (`api_url`)."""

    def __init__(
        self,
        *,
        token: str,
        repository: str,
        api_url: str,
        timeout: int,
        seconds_between_requests: float,
        seconds_between_writes: float,
    ) -> None:
        self.repository = repository
        self._github = Github(
            auth=Auth.Token(token),
            base_url=api_url.rstrip("/"),
            timeout=timeout,
            retry=None,
            seconds_between_requests=seconds_between_requests,
            seconds_between_writes=seconds_between_writes,
            user_agent="OpsSeer",
            lazy=True,
        )
        self._repo = self._github.get_repo(repository)

    @classmethod
    def from_settings(cls, settings: Settings) -> "GitHubClient":
        return cls(
            token=settings.github_token.get_secret_value(),
            repository=settings.github_repository,
            api_url=settings.github_api_url,
            timeout=settings.github_timeout_seconds,
            seconds_between_requests=settings.github_seconds_between_requests,
            seconds_between_writes=settings.github_seconds_between_writes,
        )

    def _call(self, action: str, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except GithubException as exc:
            raise translate_error(exc, action=action, repository=self.repository) from None
        except requests.Timeout as exc:
            raise GitHubUnavailable(f"GitHub did not respond to {action} in time: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            raise GitHubUnavailable(f"GitHub could not be reached for {action}: {type(exc).__name__}: {exc}") from None

    def _get_json(self, action: str, path: str, parameters: dict[str, Any]) -> Any:
        _, data = self._call(action, self._github.requester.requestJsonAndCheck, "GET", path, parameters=parameters)
        return data

    def create_issue(self, *, title: str, body: str, labels: list[str], assignees: list[str]) -> IssueRef:
        issue = self._call("create issue", self._repo.create_issue, title=title, body=body, labels=labels, assignees=assignees)
        return IssueRef(issue.number, issue.html_url, issue.state)

    def set_state(self, number: int, *, state: str, state_reason: str | None = None) -> IssueRef:
        """Open or close an issue ("open" or "closed"; state_reason such as "completed" or "reopened")."""
        issue = self._repo.get_issue(number)
        changes: dict[str, Any] = {"state": state}
        if state_reason is not None:
            changes["state_reason"] = state_reason
        self._call(f"set issue #{number} {state}", issue.edit, **changes)
        return IssueRef(issue.number, issue.html_url, issue.state)

    def comment(self, number: int, body: str) -> CommentRef:
        issue = self._repo.get_issue(number)
        comment = self._call(f"comment on issue #{number}", issue.create_comment, body)
        return CommentRef(comment.id, comment.html_url)

    def find_issue(self, marker: str, *, since: datetime) -> IssueRef | None:
        """Find the issue whose body starts with `marker`, skipping pull requests.

        The search API comes first; its index can lag a new issue by seconds, so the repository's issues
        updated since `since` are listed next. Only a body that starts with the exact marker counts, which
        an escaped copy of the marker inside alert text never does.
        """
        key = marker.removeprefix("<!--").removesuffix("-->").strip()
        found = self._get_json(
            "search issues",
            "/search/issues",
            {"q": f'"{key}" repo:{self.repository} is:issue in:body', "per_page": LOOKUP_PAGE_SIZE},
        )
        for item in found.get("items", []):
            if "pull_request" not in item and (item.get("body") or "").startswith(marker):
                return IssueRef(item["number"], item["html_url"], item["state"])
        recent = self._get_json(
            "list issues",
            f"/repos/{self.repository}/issues",
            {"state": "all", "sort": "created", "direction": "desc", "since": since.isoformat(), "per_page": LOOKUP_PAGE_SIZE},
        )
        for item in recent:
            if "pull_request" not in item and (item.get("body") or "").startswith(marker):
                return IssueRef(item["number"], item["html_url"], item["state"])
        return None

    def find_comment(self, number: int, marker: str, *, since: datetime) -> CommentRef | None:
        """Find a comment on issue `number`, created or updated since `since`, whose body starts with `marker`."""
        comments = self._get_json(
            f"list comments of issue #{number}",
            f"/repos/{self.repository}/issues/{number}/comments",
            {"since": since.isoformat(), "per_page": 100},
        )
        for item in comments:
            if (item.get("body") or "").startswith(marker):
                return CommentRef(item["id"], item["html_url"])
        return None
