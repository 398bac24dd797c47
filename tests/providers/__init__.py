"""Tests of the provider clients; CannedServer is a tiny local HTTP server so the real requests path runs."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests


@dataclass
class Canned:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> as is
    headers: dict[str, str] = field(default_factory=dict)
    action: str = ""  # "close": drop the connection without answering; "sleep": wait `delay` first
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


class CannedServer:
    """Answers (method, path) with canned responses and remembers every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Canned]] = {}
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                server.requests.append(
                    Seen(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
                )
                queue = server.routes.get((self.command, parts.path))
                if not queue:
                    canned = Canned(404, {"message": f"no canned route for {self.command} {parts.path}"})
                else:
                    canned = queue[0] if len(queue) == 1 else queue.pop(0)
                if canned.action == "close":
                    self.close_connection = True
                    return
                if canned.delay:
                    time.sleep(canned.delay)
                if isinstance(canned.body, dict | list):
                    payload = json.dumps(canned.body).encode()
                    ctype = "application/json"
                elif isinstance(canned.body, str):
                    payload, ctype = canned.body.encode(), "text/html"
                else:
                    payload, ctype = canned.body or b"", "application/octet-stream"
                try:
                    self.send_response(canned.status)
                    headers = {"Content-Type": ctype, **canned.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(
        self,
        method: str,
        path: str,
        status: int = 200,
        body: Any = None,
        headers: dict | None = None,
        **kw: Any,
    ) -> None:
        """Answer method+path; several add() calls for the same route answer in turn (the last one repeats)."""
        self.routes.setdefault((method, path), []).append(Canned(status, body, headers or {}, **kw))

    def reset(self) -> None:
        self.routes.clear()
        self.requests.clear()

    def last(self) -> Seen:
        return self.requests[-1]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session", name="canned_server")
def canned_server_fixture():
    server = CannedServer()
    yield server
    server.stop()


@pytest.fixture(name="canned")
def canned_fixture(canned_server):
    canned_server.reset()
    yield canned_server
    canned_server.reset()


@pytest.fixture(name="session")
def session_fixture():
    with requests.Session() as session:
        yield session
