"""An ASGI middleware that rejects oversized uploads with 413 before BentoML parses the multipart body.

BentoML (1.4) spools every uploaded file to disk without a size limit, so the limit is enforced on the
raw request: by Content-Length when the client sends it, and by counting body bytes otherwise.
"""

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Room for the multipart boundaries and part headers around the file; the exact file size is checked
# after parsing.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class UploadSizeLimit:
    """Answer 413 to a request on one of `paths` whose body is larger than max_bytes plus multipart overhead."""

    def __init__(self, app: ASGIApp, *, paths: tuple[str, ...], max_bytes: int) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.max_bytes = max_bytes
        self.limit = max_bytes + MULTIPART_OVERHEAD_BYTES

    def _message(self) -> str:
        return (
            f"audio upload is over the limit of {self.max_bytes} bytes; upload a shorter or more compressed "
            "recording (such as MP3), or raise OPSSEER_ASR_MAX_BYTES"
        )

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"error": self._message()}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return

        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            logger.info("rejected an upload to %s with 413: Content-Length %s over %d", scope["path"], declared.decode(), self.limit)
            await self._reject(send)
            return

        received = 0
        exceeded = False
        responded = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Ending the body here makes the app fail to parse it; send_or_reject replaces its response.
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def send_or_reject(message: Message) -> None:
            nonlocal responded
            if not exceeded:
                await send(message)
                return
            if not responded:
                responded = True
                logger.info("rejected a streamed upload to %s with 413: body over %d bytes", scope["path"], self.limit)
                await self._reject(send)

        await self.app(scope, counting_receive, send_or_reject)
