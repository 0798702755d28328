"""A fake GitHub REST API on loopback for the issue endpoints OpsSeer uses, speaking GitHub's wire format.

It serves under the GitHub Enterprise prefix /api/v3, checks the token, stores issues and comments, and
answers with GitHub's status codes, JSON shapes and rate-limit headers. Scripted faults return rate
limits or errors, or hold a response past the client's timeout after the object was stored.
"""

import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/api/v3"
DOCS = "https://docs.github.com/rest"


@dataclass
class Fault:
    method: str
    path: str  # a regular expression matched against the path after the prefix
    status: int = 0  # 0: serve normally, then apply `delay`
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0
    times: int = 1


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGitHub:
    def __init__(self, *, token: str = "ghp_test", repository: str = "acme/incidents") -> None:
        self.token = token
        self.repository = repository
        self.read_only_tokens: set[str] = set()
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._ids = iter(range(1000, 10**9))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # Control

    def __enter__(self) -> "FakeGitHub":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PREFIX}"

    def fault(self, method: str, path: str, **kwargs: Any) -> Fault:
        fault = Fault(method, path, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def add_pull_request(self, body: str) -> dict[str, Any]:
        """Store a pull request, which the issues endpoints and search return like an issue with `pull_request`."""
        item = self._new_issue({"title": "A pull request", "body": body})
        item["pull_request"] = {"url": f"{self.url}/repos/{self.repository}/pulls/{item['number']}", "merged_at": None}
        return item

    def comments_of(self, number: int) -> list[dict[str, Any]]:
        return [comment for comment in self.comments if comment["issue_number"] == number]

    def real_issues(self) -> list[dict[str, Any]]:
        return [issue for issue in self.issues.values() if "pull_request" not in issue]

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for verb, path in self.requests if verb == method and re.fullmatch(pattern, path))

    # Representations

    def _user(self, login: str) -> dict[str, Any]:
        return {"login": login, "id": abs(hash(login)) % 10**7, "node_id": "U_x", "type": "User", "site_admin": False,
                "url": f"{self.url}/users/{login}", "html_url": f"https://github.example/{login}"}

    def _new_issue(self, data: dict[str, Any]) -> dict[str, Any]:
        number = len(self.issues) + 1
        api = f"{self.url}/repos/{self.repository}/issues/{number}"
        issue = {
            "id": next(self._ids),
            "node_id": f"I_{number}",
            "url": api,
            "repository_url": f"{self.url}/repos/{self.repository}",
            "labels_url": api + "/labels{/name}",
            "comments_url": api + "/comments",
            "events_url": api + "/events",
            "html_url": f"https://github.example/{self.repository}/issues/{number}",
            "number": number,
            "state": "open",
            "state_reason": None,
            "title": data.get("title", ""),
            "body": data.get("body"),
            "user": self._user("opsseer-bot"),
            "labels": [{"id": next(self._ids), "node_id": "L_x", "url": f"{self.url}/repos/{self.repository}/labels/{name}",
                        "name": name, "color": "d73a4a", "default": False, "description": None} for name in data.get("labels", [])],
            "assignee": self._user(data["assignees"][0]) if data.get("assignees") else None,
            "assignees": [self._user(login) for login in data.get("assignees", [])],
            "milestone": None,
            "locked": False,
            "active_lock_reason": None,
            "comments": 0,
            "closed_at": None,
            "created_at": _now(),
            "updated_at": _now(),
            "closed_by": None,
            "author_association": "OWNER",
        }
        self.issues[number] = issue
        return issue

    # HTTP

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None, delay: float = 0.0) -> None:
                data = json.dumps(payload).encode()
                base = {
                    "Content-Type": "application/json; charset=utf-8",
                    "X-GitHub-Api-Version-Selected": "2022-11-28",
                    "X-GitHub-Request-Id": f"FAKE:{next(fake._ids)}",
                    "X-RateLimit-Limit": "5000",
                    "X-RateLimit-Remaining": "4999",
                    "X-RateLimit-Reset": str(int(time.time()) + 3600),
                    "X-RateLimit-Used": "1",
                    "X-RateLimit-Resource": "search" if self.path.startswith(PREFIX + "/search") else "core",
                    "Content-Length": str(len(data)),
                }
                base.update(headers or {})
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for name, value in base.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up after its timeout; GitHub keeps what it stored all the same.
                    self.close_connection = True

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                path = parts.path.removeprefix(PREFIX)
                query = {key: values[0] for key, values in parse_qs(parts.query).items()}
                with fake.lock:
                    fake.requests.append((method, path))
                    fault = next((f for f in fake.faults if f.times > 0 and f.method == method and re.fullmatch(f.path, path)), None)
                    if fault is not None:
                        fault.times -= 1

                token = (self.headers.get("Authorization") or "").partition(" ")[2]
                if token != fake.token and token not in fake.read_only_tokens:
                    return self._send(401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"})
                if fault is not None and fault.status:
                    return self._send(fault.status, fault.body, fault.headers, fault.delay)
                if method != "GET" and token in fake.read_only_tokens:
                    return self._send(403, {"message": "Resource not accessible by personal access token",
                                            "documentation_url": DOCS + "/issues/issues#create-an-issue", "status": "403"})
                status, payload, headers = fake._route(method, path, query, json.loads(raw) if raw else {})
                self._send(status, payload, headers, fault.delay if fault is not None else 0.0)

        return Handler

    def _route(self, method: str, path: str, query: dict[str, str], data: dict[str, Any]):
        not_found = (404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}, {})
        if method == "GET" and path == "/search/issues":
            return 200, self._search(query), {}
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues(?:/(\d+))?(/comments)?", path)
        if match is None or match.group(1) != self.repository:
            return not_found
        number = int(match.group(2)) if match.group(2) else None
        with self.lock:
            if number is None and method == "POST":
                if not data.get("title"):
                    return 422, {"message": "Validation Failed", "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}],
                                 "documentation_url": DOCS, "status": "422"}, {}
                issue = self._new_issue(data)
                return 201, issue, {"Location": issue["url"]}
            if number is None and method == "GET":
                return 200, self._list(query), {}
            issue = self.issues.get(number)
            if issue is None:
                return not_found
            if match.group(3) and method == "POST":
                comment = {"id": next(self._ids), "node_id": "IC_x", "issue_number": number,
                           "url": f"{self.url}/repos/{self.repository}/issues/comments/{len(self.comments) + 1}",
                           "html_url": f"{issue['html_url']}#issuecomment-{len(self.comments) + 1}",
                           "issue_url": issue["url"], "body": data.get("body", ""), "user": self._user("opsseer-bot"),
                           "created_at": _now(), "updated_at": _now(), "author_association": "OWNER"}
                self.comments.append(comment)
                issue["comments"] += 1
                issue["updated_at"] = _now()
                return 201, comment, {"Location": comment["url"]}
            if match.group(3) and method == "GET":
                return 200, [c for c in self.comments if c["issue_number"] == number and c["updated_at"] >= query.get("since", "")], {}
            if method == "PATCH":
                if "state" in data:
                    issue["state"] = data["state"]
                    issue["state_reason"] = data.get("state_reason")
                    issue["closed_at"] = _now() if data["state"] == "closed" else None
                issue["updated_at"] = _now()
                return 200, issue, {}
            if method == "GET":
                return 200, issue, {}
        return not_found

    def _list(self, query: dict[str, str]) -> list[dict[str, Any]]:
        state = query.get("state", "open")
        items = [i for i in self.issues.values() if (state == "all" or i["state"] == state) and i["updated_at"] >= query.get("since", "")]
        items.sort(key=lambda i: i["number"], reverse=query.get("direction", "desc") == "desc")
        return items[: int(query.get("per_page", 30))]

    def _search(self, query: dict[str, str]) -> dict[str, Any]:
        """GitHub search: quoted phrases must appear in the body, repo: and is:issue qualifiers filter."""
        q = query.get("q", "")
        phrases = re.findall(r'"([^"]*)"', q)
        repo = re.search(r"repo:(\S+)", q)
        with self.lock:
            items = [
                i for i in self.issues.values()
                if all(p in (i["body"] or "") for p in phrases)
                and (repo is None or repo.group(1) == self.repository)
                and ("is:issue" not in q or "pull_request" not in i)
            ]
        return {"total_count": len(items), "incomplete_results": False, "items": [{**i, "score": 1.0} for i in items]}
