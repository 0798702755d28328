"""The OpsSeer HTTP server: the Alertmanager trigger, the portal and /metrics in one ASGI app."""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import click
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from functions.db import Database
from functions.errors import error_response
from functions.settings import Settings, SettingsError, get_settings
from functions.slack.router import create_router as create_slack_router
from functions.triggers import create_router as create_trigger_router
from portal.recording_routes import EnqueueRecording, celery_enqueue_recording
from portal.routes import create_router as create_portal_router

logger = logging.getLogger(__name__)

Enqueue = Callable[[list[int], list[int]], None]


def celery_enqueue(opened_episode_ids: list[int], resolved_episode_ids: list[int]) -> None:
    """Enqueue the task that starts the episodes' pipelines."""
    from functions.tasks.pipelines import start_episode_pipelines

    start_episode_pipelines.apply_async(args=[opened_episode_ids, resolved_episode_ids], retry=False)


def create_app(
    settings: Settings,
    *,
    enqueue: Enqueue = celery_enqueue,
    database: Database | None = None,
    enqueue_recording: EnqueueRecording = celery_enqueue_recording,
) -> FastAPI:
    """Assemble the trigger, the portal and the metrics endpoint around one database."""
    if settings.webhook_token is None or not settings.webhook_token.get_secret_value():
        raise SettingsError("OPSSEER_WEBHOOK_TOKEN is required: set it to the bearer token Alertmanager sends")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.database.dispose()

    # The interactive docs pages load their assets from a CDN, so only the OpenAPI document is served.
    app = FastAPI(title="OpsSeer", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json", lifespan=lifespan)
    app.state.settings = settings
    app.state.database = database or Database(settings.database_url)
    app.state.enqueue = enqueue
    app.state.enqueue_recording = enqueue_recording

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        return error_response(422, "invalid_request", f"invalid {field}: {first['msg']}", field=field)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"status": "ok"}

    app.include_router(create_trigger_router())
    app.include_router(create_slack_router())
    app.include_router(create_portal_router(settings))
    return app


def create_app_from_environment() -> FastAPI:
    """Build the app from OPSSEER_* variables; the factory each uvicorn worker process calls."""
    return create_app(get_settings())


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=18080, show_default=True, type=int, help="TCP port to bind.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Number of server processes.")
def api_command(host: str, port: int, workers: int) -> None:
    """Serve the Alertmanager trigger and the portal."""
    try:
        create_app(get_settings())
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    logger.info("serving the trigger and portal on http://%s:%d with %d worker processes", host, port, workers)
    uvicorn.run(
        "opsseer.server:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )
