"""Errors of the GitHub integration.

GitHubError
├── GitHubUnavailable   timeout, refused connection or HTTP 5xx: retried with backoff (a TransientError)
├── RateLimited         primary or secondary rate limit: retried after `retry_after` seconds
├── PermissionDenied    401, or 403 without a rate-limit signal: fix the token, never retried
├── NotFound            404 or 410: fix the repository name or the token's access, never retried
└── Rejected            any other 4xx, such as 422 validation failed: never retried
"""

from functions.tasks.base import TransientError


class GitHubError(Exception):
    """A GitHub API call failed; the message names the call and what to do."""


class GitHubUnavailable(GitHubError, TransientError):
    """GitHub did not respond in time, refused the connection or returned HTTP 5xx."""


class RateLimited(GitHubError):
    """GitHub rate-limited the token; retry after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float, limit: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # "primary" (x-ratelimit-remaining: 0) or "secondary" (Retry-After or the secondary rate limit message).
        self.limit = limit


class PermissionDenied(GitHubError):
    """GitHub rejected the token, or the token may not write issues in the repository."""


class NotFound(GitHubError):
    """The repository or issue does not exist, or the token cannot see it."""


class Rejected(GitHubError):
    """GitHub rejected the request as invalid (HTTP 4xx other than 401, 403, 404, 410 and 429)."""
