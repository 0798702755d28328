"""HTTP endpoints for Slack: the Events API, interactivity and the /opsseer slash command.

Every request is verified against OPSSEER_SLACK_SIGNING_SECRET on its raw body before anything is parsed.
A request that fails verification gets 401 and is counted in opsseer_slack_rejected_requests_total by reason.
Work is enqueued to Celery, so each request is answered well within Slack's 3-second limit.
"""

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from kombu.exceptions import OperationalError as BrokerError
from prometheus_client import Counter
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool

from functions.errors import error_response
from functions.slack.bot import InvalidRequest, SlackBot, celery_dispatch
from functions.slack.signature import REASONS, SignatureRejected, verify_request

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024

SLACK_REJECTED = Counter(
    "opsseer_slack_rejected_requests_total", "Requests to the Slack endpoints rejected with 401, by reason.", ["reason"]
)
SLACK_REQUESTS = Counter(
    "opsseer_slack_requests_total", "Requests to the Slack endpoints, by endpoint and HTTP status code.", ["endpoint", "code"]
)
for _reason in REASONS:
    SLACK_REJECTED.labels(reason=_reason)


def _bot(request: Request) -> SlackBot:
    state = request.app.state
    return SlackBot(state.database, getattr(state, "slack_dispatch", celery_dispatch))


async def _verified_body(request: Request) -> str:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise SignatureRejected("too_large", f"body exceeds {MAX_BODY_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise SignatureRejected("too_large", f"body exceeds {MAX_BODY_BYTES} bytes")
    secret = request.app.state.settings.slack_signing_secret
    return verify_request(body, request.headers, secret.get_secret_value() if secret else None)


def _parse_json(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise SignatureRejected("undecodable_body", f"the {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise SignatureRejected("undecodable_body", f"the {what} is not a JSON object")
    return value


def _parse_form(text: str) -> dict[str, str]:
    try:
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    except ValueError:
        raise SignatureRejected("undecodable_body", "the body is not form-encoded") from None


async def _handle(request: Request, endpoint: str) -> Response:
    try:
        text = await _verified_body(request)
        if endpoint == "events":
            envelope = _parse_json(text, "event envelope")
            retry = request.headers.get("x-slack-retry-num", "0")
            retry_num = int(retry) if retry.isdigit() else 0
            reply = await run_in_threadpool(_bot(request).handle_event, envelope, retry_num=retry_num)
        elif endpoint == "interactions":
            payload = _parse_json(_parse_form(text).get("payload", ""), "interaction payload")
            reply = await run_in_threadpool(_bot(request).handle_interaction, payload)
        else:
            reply = await run_in_threadpool(_bot(request).handle_command, _parse_form(text))
    except SignatureRejected as exc:
        SLACK_REJECTED.labels(reason=exc.reason).inc()
        logger.warning("rejected a Slack %s request with 401 (%s): %s", endpoint, exc.reason, exc)
        return error_response(401, "invalid_slack_request", str(exc))
    except InvalidRequest as exc:
        logger.warning("rejected a Slack %s request with 400: %s", endpoint, exc)
        return error_response(400, "invalid_slack_payload", str(exc))
    except (OperationalError, InterfaceError, BrokerError, RedisError, OSError) as exc:
        # Nothing was stored, so Slack's retry of this delivery will be processed.
        logger.error("Slack %s request not processed, the store or the broker is unavailable: %s", endpoint, exc)
        return error_response(503, "unavailable", "OpsSeer cannot queue this request now; Slack will retry", headers={"Retry-After": "5"})
    if reply is None:
        return Response(status_code=200)
    return JSONResponse(reply)


def _endpoint(endpoint: str):
    async def receive(request: Request) -> Response:
        response = await _handle(request, endpoint)
        SLACK_REQUESTS.labels(endpoint=endpoint, code=str(response.status_code)).inc()
        return response

    return receive


def create_router() -> APIRouter:
    router = APIRouter(prefix="/slack", include_in_schema=False)
    for endpoint in ("events", "interactions", "commands"):
        router.add_api_route(f"/{endpoint}", _endpoint(endpoint), methods=["POST"], response_model=None)
    return router
