"""The Alertmanager webhook trigger: authenticate, validate, store in one transaction, enqueue, respond.

It never calls a model, Slack or GitHub. When PostgreSQL is unreachable it returns 503 so that Alertmanager
retries. When the broker is unreachable after the commit it still returns 2xx, because the state is durable
and the periodic pipeline sweep enqueues the work later.
"""

import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from kombu.exceptions import OperationalError as BrokerError
from prometheus_client import Counter, Histogram
from redis.exceptions import RedisError
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool

from functions.alertmanager import ParsedWebhook, PayloadError, parse_webhook
from functions.correlation import DeliveryResult, record_delivery
from functions.db import Database
from functions.errors import error_response

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/v1/alertmanager"

WEBHOOK_REQUESTS = Counter(
    "opsseer_webhook_requests_total", "Alertmanager webhook requests by HTTP status code.", ["code"]
)
WEBHOOK_ALERTS = Counter(
    "opsseer_webhook_alerts_total", "Alerts received through the webhook, by correlation outcome.", ["outcome"]
)
WEBHOOK_LATENCY = Histogram(
    "opsseer_webhook_duration_seconds",
    "Time from request start to response for accepted webhook deliveries.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _authorized(request: Request, token: str) -> bool:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown client"


def create_router() -> APIRouter:
    router = APIRouter()

    @router.post(WEBHOOK_PATH, response_model=None)
    async def receive_alertmanager_webhook(request: Request) -> Response:
        response = await _handle(request)
        WEBHOOK_REQUESTS.labels(code=str(response.status_code)).inc()
        return response

    return router


async def _handle(request: Request) -> Response:
    state = request.app.state
    started = datetime.now(UTC)

    if not _authorized(request, state.settings.webhook_token.get_secret_value()):
        logger.info("rejected a webhook from %s with 401: missing or invalid bearer token", _client(request))
        return error_response(
            401,
            "unauthorized",
            "missing or invalid bearer token; set http_config.authorization in the Alertmanager webhook_config",
            headers={"WWW-Authenticate": "Bearer"},
        )
    limit = state.settings.max_body_bytes
    try:
        body = await _read_body(request, limit)
    except BodyTooLarge:
        logger.info("rejected a webhook from %s with 413: body over %d bytes", _client(request), limit)
        return error_response(
            413,
            "payload_too_large",
            f"body exceeds {limit} bytes; lower max_alerts in the webhook_config or raise OPSSEER_MAX_BODY_BYTES",
        )

    try:
        webhook = parse_webhook(body, received_at=started)
    except PayloadError as exc:
        status = 400 if exc.field is None else 422
        logger.info("rejected a webhook from %s with %d: %s", _client(request), status, exc.message[:300])
        return error_response(status, "invalid_payload", exc.message, field=exc.field)

    # The database work is synchronous, so it runs in the thread pool and keeps the event loop free.
    try:
        result = await run_in_threadpool(_store, state.database, webhook, body, started)
    except DataError as exc:
        # A value PostgreSQL cannot store (out of range, oversized) is the sender's mistake: retrying cannot help.
        logger.warning("delivery rejected by the incident store: %s", exc.orig)
        return error_response(422, "invalid_payload", f"a value in the payload cannot be stored: {exc.orig}")
    except (OperationalError, InterfaceError) as exc:
        logger.error("incident store unavailable, returning 503 so Alertmanager retries: %s", exc.orig or exc)
        return error_response(
            503, "store_unavailable", "the incident store is unavailable; Alertmanager will retry", headers={"Retry-After": "5"}
        )

    for outcome in result.outcomes:
        WEBHOOK_ALERTS.labels(outcome=outcome).inc()
    if result.opened_episode_ids or result.resolved_episode_ids:
        await run_in_threadpool(_enqueue, state.enqueue, result)

    WEBHOOK_LATENCY.observe((datetime.now(UTC) - started).total_seconds())
    return JSONResponse(
        {
            "delivery_id": result.delivery_id,
            "alerts": len(webhook.alerts),
            "opened_episodes": result.opened_episode_ids,
            "resolved_episodes": result.resolved_episode_ids,
        },
        status_code=200,
    )


def _store(database: Database, webhook: ParsedWebhook, body: bytes, received_at: datetime) -> DeliveryResult:
    with database.session() as session:
        return record_delivery(session, webhook=webhook, body=body, received_at=received_at)


def _enqueue(enqueue: Callable[[list[int], list[int]], None], result: DeliveryResult) -> None:
    try:
        enqueue(result.opened_episode_ids, result.resolved_episode_ids)
    except (BrokerError, RedisError, OSError) as exc:
        logger.error(
            "delivery %s stored but enqueueing its pipelines failed; the pipeline sweep will retry: %s",
            result.delivery_id,
            exc,
        )
