"""The sandbox HTTP server: one ThreadingHTTPServer, each provider under `/{slug}`, the control API under `/_control`.

It stands for other companies' servers: state lives in memory (see state.py), never in the console's database.
"""

from __future__ import annotations

import logging
import random
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from sandbox import control
from sandbox.providers import build_providers
from sandbox.state import SandboxState, load_state, save_state
from sandbox.webhooks import DEFAULT_RETRY_DELAYS, WebhookSender
from sandbox.wire import ApiError, Request, Response, json_response

logger = logging.getLogger("sandbox")

MAX_BODY = 10 * 1024 * 1024
DEFAULT_CLIENT_ID = "lineup-ops"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128
    sandbox: SandboxServer

    def handle_error(self, request, client_address):
        # a client that went away (timeout in slow mode, refused socket) is not the server's problem
        logger.debug("sandbox: connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "LineupSandbox/1.0"
    wbufsize = 64 * 1024  # headers and body leave in one write (no Nagle/delayed-ACK stalls)
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self):  # noqa: N802
        self._handle()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        try:
            try:
                body = self._read_body()
            except ValueError:
                body = None
            if body is None:
                self.close_connection = True
                response = json_response(413, {"error": "request body too large or malformed"})
            else:
                response = self.server.sandbox.dispatch(self, body)
        except Exception:  # the server never dies on a bad request
            logger.exception("sandbox: error handling %s %s", self.command, self.path.split("?")[0])
            response = json_response(500, {"error": "sandbox internal error"})
        if response.refuse:
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            logger.info("%s %s refused (socket closed)", self.command, self.path.split("?")[0])
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if response.body:
                self.wfile.write(response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True  # the client gave up (e.g. timed out in slow mode)

    # No secrets in the log: method, path without the query string, status.
    def log_request(self, code="-", size="-"):
        logger.info("%s %s %s", self.command, self.path.split("?")[0], code)

    def log_error(self, format, *args):  # noqa: A002
        logger.debug("sandbox: " + format, *args)

    def log_message(self, format, *args):  # noqa: A002
        logger.debug("sandbox: " + format, *args)


class SandboxServer:
    """The sandbox provider. `start()` serves from a daemon thread; `serve_forever()` blocks (management command)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8765,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        webhook_retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
        state_file: str | None = None,
    ):
        self.state = SandboxState(client_id, client_secret)
        self.state_file = state_file
        if state_file:
            load_state(self.state, state_file)
        self.providers = build_providers(client_id, client_secret)
        self._stop = threading.Event()
        self.webhooks = WebhookSender(self.state, self.providers, self._stop, webhook_retry_delays)
        self._rng = random.Random()
        self._thread: threading.Thread | None = None
        self.httpd = _HTTPServer((host, port), _Handler)
        self.httpd.sandbox = self
        self.host, self.port = self.httpd.server_address[:2]

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="sandbox-server", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        saver = None
        if self.state_file:
            saver = threading.Thread(target=self._save_every, args=(2.0,), name="sandbox-saver", daemon=True)
            saver.start()
        try:
            self.httpd.serve_forever(poll_interval=0.5)
        finally:
            self._stop.set()
            self.httpd.server_close()
            if self.state_file:
                save_state(self.state, self.state_file)

    def _save_every(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            save_state(self.state, self.state_file)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def reset(self) -> None:
        self.state.reset()

    # ------------------------------------------------------------------ dispatch
    def dispatch(self, handler: _Handler, body: bytes) -> Response:
        split = urlsplit(handler.path)
        path = split.path or "/"
        query = parse_qs(split.query, keep_blank_values=True)
        host = handler.headers.get("Host") or f"{self.host}:{self.port}"
        base_url = f"http://{host}"
        if path == "/_control" or path.startswith("/_control/"):
            req = Request(handler.command, path, path, query, handler.headers, body, base_url)
            return control.handle(self, req)
        parts = path.split("/", 2)
        slug = parts[1] if len(parts) > 1 else ""
        if slug not in self.providers:
            if path == "/":
                return json_response(
                    200,
                    {
                        "sandbox": "Lineup Ops sandbox provider",
                        "providers": {s: f"{base_url}/{s}" for s in self.providers},
                        "control": f"{base_url}/_control",
                    },
                )
            return json_response(
                404, {"error": f"unknown provider {slug!r}", "providers": sorted(self.providers)}
            )
        sub = "/" + parts[2] if len(parts) > 2 else "/"
        req = Request(handler.command, sub, path, query, handler.headers, body, base_url)
        return self._provider_call(slug, req)

    def _provider_call(self, slug: str, req: Request) -> Response:
        provider = self.providers[slug]
        state = self.state
        route, found = provider.match(req.method, req.path)
        if route is not None and route.kind == "status":
            req.params = found
            with state.lock:
                return route.handler(state.provider(slug), req)

        with state.lock:
            pstate = state.provider(slug)
            mode, delay, error_rate = pstate.mode, pstate.delay, pstate.error_rate
            generation = state.generation
            if mode == "refuse":
                pstate.log_request(req.method, req.full_path, req.redacted_query(), None, None)
                return Response(0, refuse=True)
        if mode == "slow" and delay > 0:
            if self._stop.wait(delay):
                return Response(0, refuse=True)

        with state.lock:
            if state.generation != generation:  # reset during the delay: this call belongs to the old state
                return Response(0, refuse=True)
            pstate = state.provider(slug)
            if mode == "down" or (mode == "flaky" and self._rng.random() < error_rate):
                _, info = pstate.quota(consume=False)
                response = provider.error("unavailable", headers=provider.rate_headers(info))
            elif route is None:
                _, info = pstate.quota(consume=False)
                if found:
                    response = provider.error(
                        "method_not_allowed",
                        f"HTTP method '{req.method}' not allowed. Allowed are {','.join(sorted(set(found)))}",
                        headers={"Allow": ", ".join(sorted(set(found)))},
                    )
                else:
                    response = provider.error("not_found", f"Unknown path {req.path}")
                response.headers.update(provider.rate_headers(info))
            else:
                req.params = found
                response = self._call_route(provider, pstate, route, req)
            pstate.log_request(req.method, req.full_path, req.redacted_query(), req.account, response.status)
        return response

    def _call_route(self, provider, pstate, route, req: Request) -> Response:
        if route.kind == "api":
            allowed, info = pstate.quota(consume=True, now=time.time())
            headers = provider.rate_headers(info)
            if not allowed:
                req.account = self._peek_account(provider, pstate, req)
                return provider.rate_limited(info)
        else:
            _, info = pstate.quota(consume=False)
            headers = provider.rate_headers(info)
        try:
            if route.kind == "api":
                req.account = provider.authenticate(pstate, req)
                provider.check_scope(pstate, req)
            response = route.handler(pstate, req)
        except ApiError as exc:
            response = exc.response
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    @staticmethod
    def _peek_account(provider, pstate, req: Request) -> str | None:
        try:
            return provider.authenticate(pstate, req)
        except ApiError:
            return None
