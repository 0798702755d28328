"""Static files of the portal (CSS and JavaScript), served from the package so no mount or CDN is needed."""

import hashlib
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from functions.errors import error_response
from portal.templating import STATIC_DIR

MEDIA_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
# URLs from static_url() carry a content hash, so a changed file gets a new URL and a long cache life is safe.
MAX_AGE_SECONDS = 86400


@dataclass(frozen=True)
class StaticFile:
    content: bytes
    media_type: str
    etag: str


def load_static_files() -> dict[str, StaticFile]:
    """Read every file of portal/static once.

    Only these names are served, so a request path never reaches the file system.
    """
    files = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and path.suffix in MEDIA_TYPES:
            content = path.read_bytes()
            etag = '"' + hashlib.sha256(content).hexdigest()[:16] + '"'
            files[path.name] = StaticFile(content=content, media_type=MEDIA_TYPES[path.suffix], etag=etag)
    return files


def create_static_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    files = load_static_files()

    @router.get("/static/{name}", response_model=None)
    async def static_file(request: Request, name: str) -> Response:
        found = files.get(name)
        if found is None:
            return error_response(404, "not_found", f"static file {name!r} not found")

        headers = {
            "ETag": found.etag,
            "Cache-Control": f"public, max-age={MAX_AGE_SECONDS}",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        return Response(found.content, media_type=found.media_type, headers=headers)

    return router
