"""A fake Slack on loopback that speaks the Web API's wire format, driven by the real slack-sdk clients.

It serves POST /api/<method> with Bearer authentication, JSON or form bodies and Slack's response shapes
({"ok": true, "channel": ..., "ts": ...} or {"ok": false, "error": ...}), HTTP 429 with Retry-After, and
response_url endpoints under /response/<id>. Failures are injected per method. A Socket Mode WebSocket server
(FakeSocketMode) pairs with apps.connections.open.
"""

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

CHANNEL_ID = "C0INCIDENTS"
BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"


@dataclass
class Failure:
    status: int
    error: str | None = None
    retry_after: int | None = None
    # Seconds to wait before answering; the request is still applied, as when Slack is slow.
    delay: float = 0.0
    # When True the request is applied (the message is stored) before the failure is returned.
    apply: bool = False


@dataclass
class FakeSlack:
    messages: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=lambda: defaultdict(list))
    # When set, the first chat.postMessage for each metadata key gets 429 with this Retry-After.
    rate_limit_first_post: int | None = None
    socket_url: str | None = None

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._ts = time.time()
        self._limited_keys: set[str] = set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._serve(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str) -> str:
        return f"{self.url}/response/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.calls.clear()
            self.responses.clear()
            self.failures.clear()
            self._limited_keys.clear()
            self.rate_limit_first_post = None

    def fail(self, method: str, failure: Failure, times: int = 1) -> None:
        with self.lock:
            self.failures[method].extend([failure] * times)

    def roots(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("thread_ts") is None]

    def replies(self, thread_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("thread_ts") == thread_ts]

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        return [call for call in self.calls if call["method"] == method]

    # The wire protocol

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        raw = handler.rfile.read(length)
        if handler.path.startswith("/response/"):
            with self.lock:
                self.responses.append({"name": handler.path.rsplit("/", 1)[1], "body": json.loads(raw), "at": time.time()})
            return self._send(handler, 200, b"ok", "text/html")
        method = handler.path.removeprefix("/api/")
        if handler.headers.get("Content-Type", "").startswith("application/json"):
            body = json.loads(raw or b"{}")
        else:
            body = dict(parse_qsl(raw.decode()))
        token = handler.headers.get("Authorization", "").removeprefix("Bearer ")
        with self.lock:
            self.calls.append({"method": method, "body": body, "at": time.time(), "token": token})
            failure = self.failures[method].pop(0) if self.failures.get(method) else None
            if failure is None and method == "chat.postMessage" and self.rate_limit_first_post is not None:
                key = (body.get("metadata") or {}).get("event_payload", {}).get("key")
                if key not in self._limited_keys:
                    self._limited_keys.add(key)
                    failure = Failure(429, retry_after=self.rate_limit_first_post)
        expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if token != expected:
            return self._json(handler, 200, {"ok": False, "error": "invalid_auth"})
        if failure is not None:
            if failure.apply:
                self._apply(method, body)
            time.sleep(failure.delay)
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            if failure.status == 200:
                return self._json(handler, 200, {"ok": False, "error": failure.error or "unknown"})
            if failure.status == 429:
                return self._json(handler, 429, {"ok": False, "error": "ratelimited"}, headers)
            return self._send(handler, failure.status, b"<html>upstream error</html>", "text/html", headers)
        return self._json(handler, 200, self._apply(method, body))

    def _apply(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if method == "chat.postMessage":
                if body.get("channel") not in (CHANNEL_ID, "#incidents"):
                    return {"ok": False, "error": "channel_not_found"}
                self._ts += 0.0001
                message = {
                    "type": "message",
                    "ts": f"{self._ts:.6f}",
                    "text": body.get("text"),
                    "blocks": body.get("blocks"),
                    "thread_ts": body.get("thread_ts"),
                    "metadata": body.get("metadata"),
                }
                self.messages.append(message)
                return {"ok": True, "channel": CHANNEL_ID, "ts": message["ts"], "message": message}
            if method == "chat.update":
                for message in self.messages:
                    if message["ts"] == body.get("ts"):
                        message.update(text=body.get("text"), blocks=body.get("blocks"), edited=True)
                        return {"ok": True, "channel": CHANNEL_ID, "ts": message["ts"], "text": message["text"]}
                return {"ok": False, "error": "message_not_found"}
            if method in ("conversations.history", "conversations.replies"):
                oldest = float(body.get("oldest", 0))
                if method == "conversations.history":
                    found = [m for m in self.messages if m["thread_ts"] is None and float(m["ts"]) > oldest]
                else:
                    found = [m for m in self.messages if body.get("ts") in (m["ts"], m["thread_ts"])]
                listed = [dict(m) for m in reversed(found)]
                if not body.get("include_all_metadata"):
                    for m in listed:
                        m.pop("metadata", None)
                return {"ok": True, "messages": listed, "has_more": False}
            if method == "apps.connections.open":
                return {"ok": True, "url": self.socket_url}
        return {"ok": False, "error": "unknown_method"}

    def _json(self, handler: BaseHTTPRequestHandler, status: int, body: dict, headers: dict | None = None) -> None:
        self._send(handler, status, json.dumps(body).encode(), "application/json; charset=utf-8", headers)

    def _send(self, handler: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str, headers: dict | None = None) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
