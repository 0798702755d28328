"""The toyprod HTTP service: a small orders API with runtime fault injection and Prometheus metrics."""

import asyncio
import itertools
import logging
import time
from collections import deque
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from toyprod.chaos import Chaos, ChaosUpdate
from toyprod.metrics import UNMATCHED_ROUTE, ToyprodMetrics

logger = logging.getLogger(__name__)

# GET /orders returns at most this many orders, kept in memory. Older ones are dropped, so a long load test
# cannot grow memory.
MAX_STORED_ORDERS = 100
SEED_ORDERS = (("espresso beans 1 kg", 2), ("pour-over kettle", 1), ("paper filters x100", 5))


class OrderIn(BaseModel):
    """The body of POST /orders."""

    model_config = ConfigDict(extra="forbid")

    item: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=1000)


class Order(OrderIn):
    """An order as toyprod returns it."""

    id: int
    created_at: datetime


class ToyprodState:
    """Mutable state of one toyprod app: the orders, the current faults and when they were set."""

    def __init__(self, chaos: Chaos, metrics: ToyprodMetrics) -> None:
        self.metrics = metrics
        self.orders: deque[Order] = deque(maxlen=MAX_STORED_ORDERS)
        self._order_ids = itertools.count(1)
        self.chaos = chaos
        self.chaos_set_at = time.monotonic()
        metrics.set_chaos(chaos)

        for item, quantity in SEED_ORDERS:
            self.add_order(OrderIn(item=item, quantity=quantity))

    def add_order(self, order_in: OrderIn) -> Order:
        order = Order(id=next(self._order_ids), created_at=datetime.now(timezone.utc), **order_in.model_dump())
        self.orders.append(order)
        return order

    def set_chaos(self, chaos: Chaos) -> None:
        """Replace the faults and restart the sine phase."""
        self.chaos = chaos
        self.chaos_set_at = time.monotonic()
        self.metrics.set_chaos(chaos)
        logger.info("chaos set: %s", chaos.model_dump())


class MetricsMiddleware:
    """Record duration, count and 5xx errors of every HTTP request, labelled by route template."""

    def __init__(self, app: ASGIApp, metrics: ToyprodMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        # An exception that escapes the app becomes a 500 in Starlette's outer error middleware.
        response_status = 500

        async def send_and_capture_status(message: Message) -> None:
            nonlocal response_status
            if message["type"] == "http.response.start":
                response_status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_capture_status)
        finally:
            # The router stores the matched route in the shared scope dict, so it is visible here after the call.
            route = scope.get("route")
            self.metrics.observe_request(
                route=getattr(route, "path", UNMATCHED_ROUTE),
                method=scope["method"],
                status=response_status,
                duration_s=time.perf_counter() - started,
            )


def get_state(request: Request) -> ToyprodState:
    return request.app.state.toyprod


StateDep = Annotated[ToyprodState, Depends(get_state)]


async def inject_faults(state: StateDep) -> None:
    """Delay the request by the configured latency, then fail it with probability `error_rate`."""
    chaos = state.chaos
    delay_s = chaos.delay_s(time.monotonic() - state.chaos_set_at)
    if delay_s > 0:
        await asyncio.sleep(delay_s)

    if chaos.should_fail():
        logger.debug("injecting a 500 error (error_rate=%s)", chaos.error_rate)
        raise HTTPException(
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
            detail=f"injected fault: chaos error_rate is {chaos.error_rate:g}",
        )


orders_router = APIRouter(dependencies=[Depends(inject_faults)])
ops_router = APIRouter()


@orders_router.get("/orders", response_model=list[Order])
async def list_orders(state: StateDep) -> list[Order]:
    """List the most recent orders, newest last."""
    return list(state.orders)


@orders_router.post("/orders", response_model=Order, status_code=status.HTTP_201_CREATED)
async def create_order(order_in: OrderIn, state: StateDep) -> Order:
    """Create an order."""
    return state.add_order(order_in)


@ops_router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Report that the process is up. Faults do not apply to this endpoint."""
    return {"status": "ok"}


@ops_router.get("/metrics", include_in_schema=False)
async def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@ops_router.get("/chaos", response_model=Chaos)
async def get_chaos(state: StateDep) -> Chaos:
    """Return the current faults."""
    return state.chaos


@ops_router.put("/chaos", response_model=Chaos)
async def update_chaos(update: ChaosUpdate, state: StateDep) -> Chaos:
    """Change some or all faults and return the result. Fields left out keep their value."""
    state.set_chaos(update.apply_to(state.chaos))
    return state.chaos


@ops_router.delete("/chaos", response_model=Chaos)
async def clear_chaos(state: StateDep) -> Chaos:
    """Remove every fault and return the resulting default settings."""
    state.set_chaos(Chaos())
    return state.chaos


def create_app(chaos: Chaos | None = None) -> FastAPI:
    """Build a toyprod app with its own metrics registry, starting with `chaos` (no faults by default)."""
    metrics = ToyprodMetrics()
    app = FastAPI(title="toyprod", summary="Demo orders service with fault injection.")
    app.state.toyprod = ToyprodState(chaos or Chaos(), metrics)

    app.include_router(orders_router)
    app.include_router(ops_router)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
