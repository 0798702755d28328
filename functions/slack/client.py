"""A small Slack Web API client around slack-sdk's WebClient, with an explicit timeout and typed errors.

Exception tree:
- SlackError: any Slack failure.
  - SlackRejected: Slack answered with {"ok": false} or a 4xx other than 429; retrying the same call cannot help.
  - SlackUnavailable (also a TransientError): a connection error, a timeout or HTTP 5xx; worth retrying.
    `maybe_delivered` is True when the request may have reached Slack (a timeout or a 5xx), so a post could
    exist even though no ts came back.
    - SlackRateLimited: HTTP 429; `retry_after` holds the seconds from the Retry-After header.

slack-sdk's own retry handlers are disabled: a retried chat.postMessage after a timeout could post twice, and a
rate-limit retry would sleep inside the worker. Retries are Celery's job.
"""

import logging
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from functions.settings import Settings
from functions.tasks.base import TransientError

logger = logging.getLogger(__name__)

# Slack's error codes that describe a problem on Slack's side, sent with HTTP 200 or 5xx.
SERVER_ERROR_CODES = {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
DEFAULT_RETRY_AFTER_SECONDS = 30.0

# The fix to suggest for the configuration errors a deployment runs into first.
FIXES = {
    "not_authed": "set OPSSEER_SLACK_BOT_TOKEN to the app's bot token (xoxb-...)",
    "invalid_auth": "set OPSSEER_SLACK_BOT_TOKEN to a valid bot token (xoxb-...)",
    "token_revoked": "reinstall the Slack app and update OPSSEER_SLACK_BOT_TOKEN",
    "account_inactive": "reinstall the Slack app and update OPSSEER_SLACK_BOT_TOKEN",
    "channel_not_found": "set OPSSEER_SLACK_CHANNEL to an existing channel id and invite the bot to it",
    "not_in_channel": "invite the bot to the channel in OPSSEER_SLACK_CHANNEL (/invite @OpsSeer)",
    "missing_scope": "add the missing scope to the Slack app (see integrations/slack/manifest.yaml) and reinstall it",
    "msg_too_long": "the message exceeds Slack's size limit; this is a bug in the message rendering",
    "invalid_blocks": "Slack rejected the Block Kit blocks; this is a bug in the message rendering",
}


class SlackError(Exception):
    """A Slack Web API call failed."""


class SlackRejected(SlackError):
    """Slack rejected the call; `error` is Slack's error code, such as "channel_not_found"."""

    def __init__(self, method: str, error: str, status: int) -> None:
        self.method = method
        self.error = error
        self.status = status
        fix = FIXES.get(error, "check the Slack app's configuration")
        super().__init__(f"Slack rejected {method} with HTTP {status} and error {error!r}: {fix}")


class SlackUnavailable(SlackError, TransientError):
    """Slack could not be reached, timed out or answered HTTP 5xx."""

    def __init__(self, message: str, *, maybe_delivered: bool) -> None:
        self.maybe_delivered = maybe_delivered
        super().__init__(message)


class SlackRateLimited(SlackUnavailable):
    """Slack answered HTTP 429; the call must wait `retry_after` seconds."""

    def __init__(self, method: str, retry_after: float) -> None:
        super().__init__(f"Slack rate-limited {method}; retry after {retry_after:g} s", maybe_delivered=False)
        self.retry_after = retry_after


@dataclass(frozen=True)
class PostedMessage:
    channel: str
    ts: str


def _retry_after(headers: dict[str, Any]) -> float:
    for name, value in headers.items():
        if name.lower() != "retry-after":
            continue
        text = value[0] if isinstance(value, list) else value
        try:
            return max(0.0, float(text))
        except (TypeError, ValueError):
            break
    return DEFAULT_RETRY_AFTER_SECONDS


class SlackClient:
    """The Slack Web API calls OpsSeer makes, each mapped to the typed errors above."""

    def __init__(self, *, token: str, base_url: str, timeout: float) -> None:
        if not base_url.endswith("/"):
            base_url += "/"
        self.web = WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=[])  # type: ignore[arg-type]
        self.timeout = timeout

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a Web API method with a JSON body and return the response body."""
        try:
            response = self.web.api_call(method, json=params)
        except SlackApiError as exc:
            raise self._classify(method, exc) from None
        except (TimeoutError, ConnectionError, HTTPException) as exc:
            # The request was sent, or may have been, before the connection failed.
            raise SlackUnavailable(f"Slack {method} failed: {type(exc).__name__}: {exc}", maybe_delivered=True) from None
        except URLError as exc:
            # urllib wraps connection failures before anything was sent, such as a refused connection.
            delivered = isinstance(exc.reason, TimeoutError)
            raise SlackUnavailable(f"Slack {method} failed: {exc.reason}", maybe_delivered=delivered) from None
        return dict(response.data)

    def _classify(self, method: str, exc: SlackApiError) -> SlackError:
        response = exc.response
        status = response.status_code
        data = response.data if isinstance(response.data, dict) else {}
        error = str(data.get("error") or f"http_{status}")
        if status == 429:
            return SlackRateLimited(method, _retry_after(response.headers))
        if status >= 500 or error in SERVER_ERROR_CODES:
            return SlackUnavailable(f"Slack {method} failed with HTTP {status}: {error}", maybe_delivered=True)
        return SlackRejected(method, error, status)

    def post_message(
        self,
        *,
        channel: str,
        text: str,
        blocks: list[dict] | None = None,
        thread_ts: str | None = None,
        metadata: dict | None = None,
    ) -> PostedMessage:
        params: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False, "unfurl_media": False}
        if blocks is not None:
            params["blocks"] = blocks
        if thread_ts is not None:
            params["thread_ts"] = thread_ts
        if metadata is not None:
            params["metadata"] = metadata
        data = self.call("chat.postMessage", **params)
        return PostedMessage(channel=str(data["channel"]), ts=str(data["ts"]))

    def update_message(self, *, channel: str, ts: str, text: str, blocks: list[dict]) -> None:
        self.call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks)

    def find_message(
        self, *, channel: str, event_type: str, key: str, oldest: float, thread_ts: str | None = None
    ) -> str | None:
        """Return the ts of the message whose metadata carries this event type and key, posted after oldest."""
        params: dict[str, Any] = {"channel": channel, "oldest": f"{oldest:.6f}", "limit": 200, "include_all_metadata": True}
        method = "conversations.history"
        if thread_ts is not None:
            method = "conversations.replies"
            params["ts"] = thread_ts
        data = self.call(method, **params)
        for message in data.get("messages", []):
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") == event_type and (metadata.get("event_payload") or {}).get("key") == key:
                return str(message["ts"])
        return None


def respond(response_url: str, *, text: str, blocks: list[dict] | None = None, timeout: float, replace_original: bool = False) -> None:
    """Answer a slash command or an interaction through its response_url."""
    webhook = WebhookClient(response_url, timeout=timeout, retry_handlers=[])  # type: ignore[arg-type]
    try:
        response = webhook.send(text=text, blocks=blocks, response_type="ephemeral", replace_original=replace_original)
    except (TimeoutError, ConnectionError, HTTPException, URLError) as exc:
        raise SlackUnavailable(f"Slack response_url failed: {exc}", maybe_delivered=True) from None
    if response.status_code == 429:
        raise SlackRateLimited("response_url", _retry_after(response.headers))
    if response.status_code >= 500:
        raise SlackUnavailable(f"Slack response_url failed with HTTP {response.status_code}", maybe_delivered=True)
    if response.status_code >= 400:
        raise SlackRejected("response_url", response.body or f"http_{response.status_code}", response.status_code)


def get_slack_client(settings: Settings) -> SlackClient | None:
    """Return a client for the configured workspace, or None when the bot token or the channel is unset."""
    if settings.slack_bot_token is None or not settings.slack_bot_token.get_secret_value() or not settings.slack_channel:
        return None
    return SlackClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=settings.slack_timeout_seconds,
    )
