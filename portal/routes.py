"""Mount every part of the portal on one router: pages, JSON API, event stream and static files."""

from fastapi import APIRouter

from functions.settings import Settings
from portal.api import create_api_router
from portal.assets import create_static_router
from portal.events import create_events_router
from portal.recording_routes import create_recordings_router
from portal.templating import create_environment
from portal.views import create_views_router


def create_router(settings: Settings) -> APIRouter:
    """Build the portal's router; the app must set app.state.database before serving requests."""
    environment = create_environment(stale_after_seconds=settings.stale_after_seconds)
    environment.globals["recording_max_bytes"] = settings.recording_max_bytes

    router = APIRouter()
    router.include_router(create_api_router())
    router.include_router(create_recordings_router(environment))
    router.include_router(create_events_router())
    router.include_router(create_views_router(environment))
    router.include_router(create_static_router())
    return router
