"""Verification of Slack's request signatures (v0 HMAC-SHA256 over "v0:{timestamp}:{raw body}")."""

import time
from collections.abc import Mapping

from slack_sdk.signature import SignatureVerifier

# Slack's documented limit: requests with a timestamp more than five minutes from now are rejected as replays.
MAX_CLOCK_SKEW_SECONDS = 300

# The values of the `reason` label of opsseer_slack_rejected_requests_total; the set is fixed, so the label is bounded.
REASONS = (
    "not_configured",
    "missing_header",
    "invalid_timestamp",
    "stale_timestamp",
    "bad_signature",
    "undecodable_body",
    "too_large",
)


class SignatureRejected(Exception):
    """A request failed verification; `reason` is one of REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REASONS, reason
        self.reason = reason
        super().__init__(message)


def verify_request(body: bytes, headers: Mapping[str, str], signing_secret: str | None, *, now: float | None = None) -> str:
    """Check the signature of a request from Slack and return its body as text; raise SignatureRejected otherwise."""
    if not signing_secret:
        raise SignatureRejected("not_configured", "Slack requests are rejected: set OPSSEER_SLACK_SIGNING_SECRET to the app's signing secret")
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature:
        raise SignatureRejected("missing_header", "missing X-Slack-Request-Timestamp or X-Slack-Signature header")
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise SignatureRejected("invalid_timestamp", f"X-Slack-Request-Timestamp {timestamp[:32]!r} is not a Unix time in seconds")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureRejected(
            "stale_timestamp",
            f"X-Slack-Request-Timestamp {timestamp} is more than {MAX_CLOCK_SKEW_SECONDS} s from the server's clock; "
            "check the clock if this repeats",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureRejected("undecodable_body", "the request body is not UTF-8") from None
    if not SignatureVerifier(signing_secret).is_valid(body=text, timestamp=timestamp, signature=signature):
        raise SignatureRejected("bad_signature", "X-Slack-Signature does not match; check OPSSEER_SLACK_SIGNING_SECRET")
    return text
