"""Plain request/response values passed between the HTTP handler, the control API and the providers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

JSON_TYPE = "application/json;charset=utf-8"
SECRET_QUERY_KEYS = ("code", "token", "secret", "key", "signature", "password", "hapikey")


class BadJson(ValueError):
    """The request body is not valid JSON."""


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    refuse: bool = False  # close the socket without answering


class ApiError(Exception):
    """Raised by a handler to answer early with a ready response."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


def json_response(status: int, obj, headers: dict | None = None, content_type: str = JSON_TYPE) -> Response:
    body = b"" if obj is None else json.dumps(obj).encode()
    h = {"Content-Type": content_type} if obj is not None else {}
    h.update(headers or {})
    return Response(status, body, h)


def html_response(status: int, html: str) -> Response:
    return Response(status, html.encode(), {"Content-Type": "text/html; charset=utf-8"})


def redirect(location: str) -> Response:
    return Response(302, b"", {"Location": location})


@dataclass
class Request:
    method: str
    path: str  # below the provider prefix (or the whole path for the control API)
    full_path: str  # as requested, without the query string
    query: dict[str, list[str]]
    headers: object  # email.message.Message from http.server
    body: bytes
    base_url: str  # http://host:port as the client reached us
    account: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def json(self):
        """The body parsed as JSON; BadJson when empty or malformed."""
        if not self.body.strip():
            raise BadJson("request body is empty, expected JSON")
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadJson(f"malformed JSON: {exc}") from None

    def form(self) -> dict[str, str]:
        """The body as application/x-www-form-urlencoded (or JSON object when sent as JSON)."""
        ctype = (self.header("Content-Type") or "").lower()
        if "json" in ctype:
            data = self.json()
            if not isinstance(data, dict):
                raise BadJson("expected a JSON object")
            return {k: "" if v is None else str(v) for k, v in data.items()}
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadJson("form body is not UTF-8") from None
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}

    def redacted_query(self) -> str:
        parts = []
        for key, values in self.query.items():
            secret = any(word in key.lower() for word in SECRET_QUERY_KEYS)
            for value in values:
                parts.append(f"{key}={'***' if secret else value}")
        return "&".join(parts)
