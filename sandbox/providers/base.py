"""What every provider's server does the same way: routes, auth, validation, writes, errors, status pages.

One `Provider` base class holds the common flow (authenticate, validate, dedupe, write, render) and
`OAuthProvider` the token endpoint and consent page; each provider is a small subclass in its own module
(sandbox/providers/<slug>.py) that declares its routes and data (required fields, id shape, error bodies),
converts between its wire shape and the "flat" field dicts of docs/provider-contract.md, and signs its own
webhooks. Its facts (quota, auth type, token lifetime) come from sandbox/facts.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import string
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from sandbox.consent import consent_error, consent_page
from sandbox.facts import PROVIDER_FACTS
from sandbox.state import ProviderState, RateInfo, Record, Subscription, iso_ms, now_ms, parse_time
from sandbox.wire import ApiError, BadJson, Request, Response, html_response, json_response, redirect

DEFAULT_STATUS = {
    "auth_invalid": 401,
    "auth_expired": 401,
    "forbidden": 403,
    "rate_limited": 429,
    "validation": 400,
    "missing_field": 400,
    "duplicate": 409,
    "unavailable": 503,
    "not_found": 404,
    "bad_request": 400,
    "method_not_allowed": 405,
}

rng = random.Random()  # record ids (not secrets)

# A webhook delivery: attempt number (1-based) -> (url, headers, body)
Builder = Callable[[int], tuple[str, dict[str, str], bytes]]


def blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def random_chars(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def hmac_hex(secret: str, message: bytes) -> str:
    """Hex HMAC-SHA256, the signature most providers put on their webhooks."""
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def add_query(url: str, **params) -> str:
    parts = urlsplit(url)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    return user, password


class Route:
    def __init__(self, method: str, pattern: str, handler, kind: str):
        self.method = method
        self.regex = re.compile("^" + pattern + "$")
        self.handler = handler
        self.kind = kind  # api (quota + credentials), oauth (token endpoint, consent page), status


class Provider(ABC):
    """Common behaviour; subclasses fill in the data and the wire shapes."""

    slug = ""
    routes_spec: list[tuple[str, str, str, str]] = []
    auth_schemes: tuple[str, ...] = ("bearer",)
    status_overrides: dict[str, int] = {}
    retry_after = "seconds"  # none, seconds, unix
    required: tuple[str, ...] = ()
    allowed_fields: frozenset[str] | None = None  # None: unknown fields are ignored
    email_field = "email"
    lineup_field = "lineup_id"
    dedupe = True
    key_prefix = ""
    statuspage = True

    def __init__(self, client_id: str, client_secret: str):
        self.facts = PROVIDER_FACTS[self.slug]
        self.client_id = client_id
        self.client_secret = client_secret
        spec = list(self.route_spec())
        self.routes = [Route(m, p, getattr(self, h), k) for m, p, h, k in spec]

    def route_spec(self):
        yield from self.routes_spec
        if self.statuspage:
            yield ("GET", r"/api/v2/status\.json", "h_statuspage_status", "status")
            yield ("GET", r"/api/v2/summary\.json", "h_statuspage_summary", "status")

    def match(self, method: str, path: str):
        """(route, params) for the request, or (None, allowed methods) when nothing fits."""
        allowed = []
        for route in self.routes:
            found = route.regex.match(path)
            if found:
                if route.method == method:
                    return route, {k: unquote(v) for k, v in found.groupdict().items() if v is not None}
                allowed.append(route.method)
        return None, allowed

    # ------------------------------------------------------------------ errors
    def status_for(self, kind: str) -> int:
        return self.status_overrides.get(kind, DEFAULT_STATUS[kind])

    def error(
        self,
        kind: str,
        message: str | None = None,
        *,
        field: str | None = None,
        existing_id: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict | None = None,
    ) -> Response:
        message = message or self.default_message(kind, field, existing_id)
        body = self.error_body(kind, message, field=field, existing_id=existing_id, code=code)
        return json_response(status or self.status_for(kind), body, headers)

    def fail(self, kind: str, message: str | None = None, **kwargs):
        raise ApiError(self.error(kind, message, **kwargs))

    def default_message(self, kind: str, field: str | None, existing_id: str | None) -> str:
        return {
            "auth_invalid": "Invalid credentials",
            "auth_expired": "Expired access token",
            "forbidden": "Forbidden",
            "rate_limited": "Rate limit exceeded",
            "validation": f"Invalid value for field {field}",
            "missing_field": f"Missing required field: {field}",
            "duplicate": f"Record already exists. Existing ID: {existing_id}",
            "unavailable": "Service temporarily unavailable",
            "not_found": "Resource not found",
            "bad_request": "Bad request",
            "method_not_allowed": "Method not allowed",
        }[kind]

    @abstractmethod
    def error_body(self, kind, message, *, field=None, existing_id=None, code=None):
        """The provider's error body for one of the kinds above."""

    # ------------------------------------------------------------------ rate limits
    def rate_headers(self, info: RateInfo) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(info.limit), "X-RateLimit-Remaining": str(info.remaining)}

    def rate_limited(self, info: RateInfo) -> Response:
        headers = self.rate_headers(info)
        if self.retry_after == "unix":
            headers["Retry-After"] = str(int(math.ceil(info.reset_at)))
        elif self.retry_after == "seconds":
            headers["Retry-After"] = str(max(1, int(math.ceil(info.reset_at - time.time()))))
        return self.error("rate_limited", self.rate_limit_message(info), headers=headers)

    def rate_limit_message(self, info: RateInfo) -> str:
        return f"Rate limit exceeded: {info.limit} requests per {info.window} seconds"

    # ------------------------------------------------------------------ auth
    def presented_credential(self, req: Request) -> str | None:
        header = req.header("Authorization") or ""
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and "bearer" in self.auth_schemes:
            return value.strip() or None
        if scheme == "api-key" and "api-key" in self.auth_schemes:
            return value.strip() or None
        if scheme == "basic" and "basic" in self.auth_schemes:
            basic = parse_basic(header)
            return basic[0] if basic and basic[0] else None
        return None

    def authenticate(self, pstate: ProviderState, req: Request) -> str:
        credential = self.presented_credential(req)
        if credential is None:
            self.fail("auth_invalid", self.missing_credentials_message())
        if self.facts.auth_type == "oauth2":
            token = pstate.access_tokens.get(credential)
            if token is None:
                self.fail("auth_invalid")
            now = now_ms()
            if token.expires_ms <= now:
                ago = max(1, (now - token.expires_ms) // 1000)
                self.fail("auth_expired", self.expired_message(ago))
            return token.account
        account = pstate.api_keys.get(credential)
        if account is None:
            self.fail("auth_invalid")
        return account

    def missing_credentials_message(self) -> str:
        return "Authentication credentials were not provided"

    def expired_message(self, ago: int) -> str:
        return "Expired access token"

    def check_scope(self, pstate: ProviderState, req: Request) -> None:  # noqa: B027 - an optional hook
        """Hook: refuse a call the credentials don't cover (Workday: another tenant)."""

    def credentials(self, pstate: ProviderState, account: str, base_url: str) -> dict:
        """Fresh credentials for an account, in the provider's terms (control API)."""
        return {"api_key": pstate.issue_api_key(account, self.key_prefix)}

    # ------------------------------------------------------------------ records
    def new_id(self, pstate: ProviderState) -> str:
        return str(uuid.uuid4())

    def unique_id(self, pstate: ProviderState) -> str:
        while True:
            candidate = self.new_id(pstate)
            if pstate.get_record(None, candidate) is None:
                return candidate

    def read_json_object(self, req: Request) -> dict:
        try:
            body = req.json()
        except BadJson as exc:
            self.fail("bad_request", str(exc))
        if not isinstance(body, dict):
            self.fail("bad_request", "Expected a JSON object")
        return body

    def parse_write(self, req: Request, body: dict) -> dict:
        """The flat fields carried by a create/update body; providers that take no writes refuse them."""
        self.fail("method_not_allowed", f"{self.slug} takes no writes")

    @abstractmethod
    def render(self, rec: Record, req: Request | None = None) -> dict:
        """A stored record in the provider's own response shape."""

    def create_defaults(self) -> dict:
        return {}

    def lookup(self, pstate: ProviderState, req: Request, record_id: str) -> Record:
        rec = pstate.get_record(req.account, record_id)
        if rec is None:
            self.fail("not_found")
        return rec

    def check_unknown(self, fields: dict) -> None:
        if self.allowed_fields is None:
            return
        for name in fields:
            if name not in self.allowed_fields:
                self.fail(
                    "validation", self.unknown_field_message(name), field=name, code=self.unknown_field_code
                )

    unknown_field_code = "INVALID_FIELD"

    def unknown_field_message(self, name: str) -> str:
        return f"Unknown field {name}"

    def write(self, pstate: ProviderState, account: str, fields: dict, rec: Record | None) -> Record:
        """Validate (required, reject rule, duplicates) and create or update the record."""
        self.check_unknown(fields)
        merged = dict(rec.fields) if rec else {}
        merged.update(fields)
        for name in self.required:
            if blank(merged.get(name)):
                self.fail("missing_field", field=name)
        rule = pstate.reject
        if rule:
            name, contains = rule["field"], rule.get("contains")
            if contains is None:
                if name in fields:
                    self.fail("validation", self.rejected_message(name, fields[name]), field=name)
            else:
                value = merged.get(name)
                if blank(value):
                    self.fail("missing_field", field=name)
                if str(contains) in str(value):
                    self.fail("validation", self.rejected_message(name, value), field=name)
        if self.dedupe and (rec is None or self.email_field in fields):
            other = pstate.find_by_field(
                account, self.email_field, merged.get(self.email_field), exclude_id=rec.id if rec else None
            )
            if other is not None:
                self.fail("duplicate", field=self.email_field, existing_id=other.id)
        if rec is None:
            values = {**self.create_defaults(), **fields}
            return pstate.add_record(account, self.unique_id(pstate), values)
        pstate.update_record(rec, fields)
        return rec

    def write_item(self, pstate: ProviderState, account: str, fields: dict, rec: Record | None):
        """One input of a batch: (record, None), or (None, the provider's error body) when it fails alone."""
        try:
            return self.write(pstate, account, fields, rec), None
        except ApiError as e:
            return None, json.loads(e.response.body or b"{}")

    def rejected_message(self, name: str, value) -> str:
        return f"Invalid value for field {name}: {value!r} is not accepted"

    def h_create(self, pstate, req):
        fields = self.parse_write(req, self.read_json_object(req))
        rec = self.write(pstate, req.account, fields, None)
        return self.created(rec, req)

    def h_get(self, pstate, req):
        return self.shown(self.lookup(pstate, req, req.params["id"]), req)

    def h_update(self, pstate, req):
        rec = self.lookup(pstate, req, req.params["id"])
        fields = self.parse_write(req, self.read_json_object(req))
        rec = self.write(pstate, req.account, fields, rec)
        return self.updated(rec, req)

    def created(self, rec: Record, req: Request) -> Response:
        return json_response(201, self.render(rec, req))

    def shown(self, rec: Record, req: Request) -> Response:
        return json_response(200, self.render(rec, req))

    def updated(self, rec: Record, req: Request) -> Response:
        return json_response(200, self.render(rec, req))

    # helpers for list endpoints
    def int_param(self, req: Request, name: str, default: int, low: int, high: int) -> int:
        raw = req.q(name)
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except ValueError:
            self.fail("bad_request", f"Invalid value for parameter {name}: {raw!r}", field=name)
        if not low <= value <= high:
            self.fail("bad_request", f"Parameter {name} must be between {low} and {high}", field=name)
        return value

    def time_param(self, req: Request, name: str) -> int | None:
        raw = req.q(name)
        if raw in (None, ""):
            return None
        value = parse_time(raw)
        if value is None:
            self.fail("bad_request", f"Invalid date for parameter {name}: {raw!r}", field=name)
        return value

    # ------------------------------------------------------------------ webhooks
    def webhook_deliveries(
        self, sub: Subscription, rec: Record, created: bool, changed: dict
    ) -> list[tuple[str, Builder]]:
        """(event id, builder) for each delivery one change makes to one subscription, signed the provider's way.

        A provider whose facts say it sends webhooks overrides this; the others send none.
        """
        return []

    # ------------------------------------------------------------------ status pages
    @staticmethod
    def health(pstate: ProviderState) -> str:
        if pstate.mode in ("down", "refuse"):
            return "outage"
        if pstate.mode in ("slow", "flaky"):
            return "degraded"
        return "ok"

    def _statuspage(self, pstate: ProviderState, summary: bool) -> dict:
        health = self.health(pstate)
        indicator, description, component = {
            "ok": ("none", "All Systems Operational", "operational"),
            "degraded": ("minor", "Partially Degraded Service", "degraded_performance"),
            "outage": ("major", "Major Service Outage", "major_outage"),
        }[health]
        since = iso_ms(pstate.mode_since_ms)
        page = {
            "id": f"sandbox{self.slug}",
            "name": self.facts.name,
            "url": self.facts.status_page,
            "time_zone": "Etc/UTC",
            "updated_at": since,
        }
        data = {"page": page, "status": {"indicator": indicator, "description": description}}
        if summary:
            data["components"] = [
                {
                    "id": f"{self.slug}-{name.lower().replace(' ', '-')}",
                    "name": name,
                    "status": component,
                    "created_at": "2020-01-01T00:00:00.000Z",
                    "updated_at": since,
                    "position": i + 1,
                    "description": None,
                    "showcase": True,
                    "group_id": None,
                    "page_id": page["id"],
                    "group": False,
                    "only_show_if_degraded": False,
                }
                for i, name in enumerate(["API", "Webhooks", "OAuth"])
            ]
            data["incidents"] = (
                []
                if health == "ok"
                else [
                    {
                        "id": f"sandbox-{pstate.mode_since_ms}",
                        "name": f"{self.facts.name} API {description.lower()}",
                        "status": "investigating",
                        "impact": indicator,
                        "created_at": since,
                        "updated_at": since,
                        "monitoring_at": None,
                        "resolved_at": None,
                        "shortlink": self.facts.status_page,
                        "page_id": page["id"],
                        "incident_updates": [
                            {
                                "status": "investigating",
                                "body": "We are investigating the issue.",
                                "created_at": since,
                            }
                        ],
                    }
                ]
            )
            data["scheduled_maintenances"] = []
        return data

    def h_statuspage_status(self, pstate, req):
        return json_response(200, self._statuspage(pstate, summary=False))

    def h_statuspage_summary(self, pstate, req):
        return json_response(200, self._statuspage(pstate, summary=True))


class OAuthProvider(Provider):
    """Token endpoint (authorization_code, refresh_token) and consent page."""

    token_path = ""
    authorize_path = ""
    token_prefix = ""
    rotate_refresh_in_response = True  # the refresh grant answers with the (same) refresh token

    def route_spec(self):
        yield ("POST", self.token_path, "h_token", "oauth")
        yield ("GET", self.authorize_path, "h_authorize_form", "oauth")
        yield ("POST", self.authorize_path, "h_authorize_grant", "oauth")
        yield from super().route_spec()

    # token errors: kind -> response, per provider
    def token_error(self, kind: str, message: str) -> Response:
        status, code = {
            "invalid_request": (400, "invalid_request"),
            "unsupported_grant_type": (400, "unsupported_grant_type"),
            "invalid_client": (401, "invalid_client"),
            "bad_code": (400, "invalid_grant"),
            "redirect_mismatch": (400, "invalid_grant"),
            "bad_refresh": (400, "invalid_grant"),
        }[kind]
        return json_response(status, {"error": code, "error_description": message})

    def token_body(self, req: Request, access: str, ttl: int, refresh: str, grant: str) -> dict:
        return {"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": ttl}

    def h_token(self, pstate, req):
        try:
            form = req.form()
        except BadJson as exc:
            return self.token_error("invalid_request", str(exc))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = parse_basic(req.header("Authorization"))
        if basic:
            client_id, client_secret = client_id or basic[0], client_secret or basic[1]
        grant = form.get("grant_type") or ""
        if grant not in ("authorization_code", "refresh_token"):
            return self.token_error("unsupported_grant_type", f"grant type not supported: {grant!r}")
        if client_id != self.client_id or client_secret != self.client_secret:
            return self.token_error("invalid_client", "invalid client credentials")
        if grant == "authorization_code":
            code = pstate.codes.get(form.get("code") or "")
            if code is None or code.used or code.expires_ms < now_ms() or code.client_id != client_id:
                return self.token_error("bad_code", "invalid, expired or already used authorization code")
            if (form.get("redirect_uri") or "") != code.redirect_uri:
                return self.token_error(
                    "redirect_mismatch", "redirect_uri does not match the authorization request"
                )
            code.used = True
            account = code.account
            refresh = pstate.issue_refresh_token(account, self.token_prefix)
        else:
            refresh = form.get("refresh_token") or ""
            entry = pstate.refresh_tokens.get(refresh)
            if entry is None or entry.revoked:
                return self.token_error("bad_refresh", "expired access/refresh token")
            account = entry.account
        req.account = account
        access, ttl = pstate.issue_access_token(account, self.token_prefix)
        return json_response(
            200,
            self.token_body(req, access, ttl, refresh, grant),
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def credentials(self, pstate: ProviderState, account: str, base_url: str) -> dict:
        access, ttl = pstate.issue_access_token(account, self.token_prefix)
        refresh = pstate.issue_refresh_token(account, self.token_prefix)
        return {"access_token": access, "refresh_token": refresh, "expires_in": ttl}

    def _authorize_params(self, req: Request, form: dict | None = None) -> dict:
        params = {k: v[0] for k, v in req.query.items()}
        params.update(form or {})
        return params

    def _check_authorize(self, params: dict) -> str | None:
        if params.get("client_id") != self.client_id:
            return f"Unknown client_id {params.get('client_id')!r}"
        uri = params.get("redirect_uri") or ""
        if not uri.startswith(("http://", "https://")):
            return "A redirect_uri (http or https) is required"
        return None

    def h_authorize_form(self, pstate, req):
        params = self._authorize_params(req)
        problem = self._check_authorize(params)
        if problem:
            return html_response(400, consent_error(self.facts.name, problem))
        extra = {k: params[k] for k in ("response_type",) if k in params}
        return html_response(
            200,
            consent_page(
                provider_name=self.facts.name,
                client_id=params["client_id"],
                redirect_uri=params["redirect_uri"],
                state=params.get("state", ""),
                scope=params.get("scope", ""),
                account=params.get("account") or "demo",
                extra=extra,
            ),
        )

    def h_authorize_grant(self, pstate, req):
        try:
            form = req.form()
        except BadJson as exc:
            return html_response(400, consent_error(self.facts.name, str(exc)))
        params = self._authorize_params(req, form)
        problem = self._check_authorize(params)
        if problem:
            return html_response(400, consent_error(self.facts.name, problem))
        state = params.get("state") or None
        if params.get("decision") == "deny":
            return redirect(add_query(params["redirect_uri"], error="access_denied", state=state))
        account = (params.get("account") or "").strip() or "demo"
        req.account = account
        code = pstate.issue_code(account, params["client_id"], params["redirect_uri"])
        return redirect(add_query(params["redirect_uri"], code=code, state=state))
