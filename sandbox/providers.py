"""The seven providers' API shapes: routes, auth, record shapes, list/pagination, error bodies, status pages.

One `Provider` base class holds the common flow (authenticate, validate, dedupe, write, render); each provider
is a small subclass that declares its routes and data (required fields, id shape, error bodies) and converts
between its wire shape and the "flat" field dicts of docs/provider-contract.md.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import random
import re
import secrets
import string
import time
import uuid
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from sandbox.consent import consent_error, consent_page
from sandbox.facts import PROVIDER_FACTS
from sandbox.state import ProviderState, RateInfo, Record, iso_ms, now_ms, parse_time
from sandbox.wire import (
    ApiError,
    BadJson,
    Request,
    Response,
    html_response,
    json_response,
    redirect,
)

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

_rng = random.Random()


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _random_chars(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


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

    def error(self, kind: str, message: str | None = None, *, field: str | None = None,
              existing_id: str | None = None, code: str | None = None, status: int | None = None,
              headers: dict | None = None) -> Response:
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
                self.fail("validation", self.unknown_field_message(name), field=name, code=self.unknown_field_code)

    unknown_field_code = "INVALID_FIELD"

    def unknown_field_message(self, name: str) -> str:
        return f"Unknown field {name}"

    def write(self, pstate: ProviderState, account: str, fields: dict, rec: Record | None) -> Record:
        """Validate (required, reject rule, duplicates) and create or update the record."""
        self.check_unknown(fields)
        merged = dict(rec.fields) if rec else {}
        merged.update(fields)
        for name in self.required:
            if _blank(merged.get(name)):
                self.fail("missing_field", field=name)
        rule = pstate.reject
        if rule:
            name, contains = rule["field"], rule.get("contains")
            if contains is None:
                if name in fields:
                    self.fail("validation", self.rejected_message(name, fields[name]), field=name)
            else:
                value = merged.get(name)
                if _blank(value):
                    self.fail("missing_field", field=name)
                if str(contains) in str(value):
                    self.fail("validation", self.rejected_message(name, value), field=name)
        if self.dedupe and (rec is None or self.email_field in fields):
            other = pstate.find_by_field(account, self.email_field, merged.get(self.email_field),
                                         exclude_id=rec.id if rec else None)
            if other is not None:
                self.fail("duplicate", field=self.email_field, existing_id=other.id)
        if rec is None:
            values = {**self.create_defaults(), **fields}
            return pstate.add_record(account, self.unique_id(pstate), values)
        pstate.update_record(rec, fields)
        return rec

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
        page = {"id": f"sandbox{self.slug}", "name": self.facts.name, "url": self.facts.status_page,
                "time_zone": "Etc/UTC", "updated_at": since}
        data = {"page": page, "status": {"indicator": indicator, "description": description}}
        if summary:
            data["components"] = [
                {"id": f"{self.slug}-{name.lower().replace(' ', '-')}", "name": name, "status": component,
                 "created_at": "2020-01-01T00:00:00.000Z", "updated_at": since, "position": i + 1,
                 "description": None, "showcase": True, "group_id": None, "page_id": page["id"],
                 "group": False, "only_show_if_degraded": False}
                for i, name in enumerate(["API", "Webhooks", "OAuth"])
            ]
            data["incidents"] = [] if health == "ok" else [{
                "id": f"sandbox-{pstate.mode_since_ms}", "name": f"{self.facts.name} API {description.lower()}",
                "status": "investigating", "impact": indicator, "created_at": since, "updated_at": since,
                "monitoring_at": None, "resolved_at": None, "shortlink": self.facts.status_page, "page_id": page["id"],
                "incident_updates": [{"status": "investigating", "body": "We are investigating the issue.",
                                      "created_at": since}],
            }]
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
                return self.token_error("redirect_mismatch", "redirect_uri does not match the authorization request")
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
        return json_response(200, self.token_body(req, access, ttl, refresh, grant),
                             {"Cache-Control": "no-store", "Pragma": "no-cache"})

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
        return html_response(200, consent_page(
            provider_name=self.facts.name, client_id=params["client_id"], redirect_uri=params["redirect_uri"],
            state=params.get("state", ""), scope=params.get("scope", ""),
            account=params.get("account") or "demo", extra=extra))

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


# ====================================================================== HubSpot
class HubSpot(OAuthProvider):
    slug = "hubspot"
    token_path = "/oauth/v1/token"
    authorize_path = "/oauth/authorize"
    token_prefix = "CO"
    retry_after = "none"
    allowed_fields = frozenset({"email", "firstname", "lastname", "company", "jobtitle", "phone", "website",
                                "lifecyclestage", "city", "country", "lineup_id"})
    unknown_field_code = "PROPERTY_DOESNT_EXIST"
    READ_ONLY = frozenset({"createdate", "lastmodifieddate", "hs_object_id"})
    routes_spec = [
        ("POST", r"/crm/v3/objects/contacts", "h_create", "api"),
        ("GET", r"/crm/v3/objects/contacts", "h_list", "api"),
        ("POST", r"/crm/v3/objects/contacts/search", "h_search", "api"),
        ("GET", r"/crm/v3/objects/contacts/(?P<id>[^/]+)", "h_get", "api"),
        ("PATCH", r"/crm/v3/objects/contacts/(?P<id>[^/]+)", "h_update", "api"),
    ]

    def token_error(self, kind, message):
        status = {
            "invalid_request": "BAD_REQUEST", "unsupported_grant_type": "BAD_GRANT_TYPE",
            "invalid_client": "BAD_CLIENT_ID", "bad_code": "BAD_AUTH_CODE",
            "redirect_mismatch": "BAD_REDIRECT_URI", "bad_refresh": "BAD_REFRESH_TOKEN",
        }[kind]
        if kind == "bad_refresh":
            message = "missing or invalid refresh token"
        return json_response(400, {"status": status, "message": message, "correlationId": str(uuid.uuid4())})

    def rate_headers(self, info):
        return {"X-HubSpot-RateLimit-Max": str(info.limit), "X-HubSpot-RateLimit-Remaining": str(info.remaining),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(info.window * 1000)}

    def expired_message(self, ago):
        return f"The OAuth token used to make this call expired {ago} second(s) ago."

    def missing_credentials_message(self):
        return ("Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")

    def unknown_field_message(self, name):
        return f'Property "{name}" does not exist'

    def error_body(self, kind, message, *, field=None, existing_id=None, code=None):
        cid = str(uuid.uuid4())
        if kind == "rate_limited":
            return {"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
                    "correlationId": cid, "policyName": "TEN_SECONDLY_ROLLING"}
        category = {
            "auth_invalid": "INVALID_AUTHENTICATION", "auth_expired": "EXPIRED_AUTHENTICATION",
            "forbidden": "MISSING_SCOPES", "validation": "VALIDATION_ERROR", "missing_field": "VALIDATION_ERROR",
            "duplicate": "CONFLICT", "unavailable": "SERVICE_UNAVAILABLE", "not_found": "OBJECT_NOT_FOUND",
            "bad_request": "VALIDATION_ERROR", "method_not_allowed": "METHOD_NOT_ALLOWED",
        }[kind]
        if kind == "duplicate":
            message = f"Contact already exists. Existing ID: {existing_id}"
        body = {"status": "error", "message": message, "correlationId": cid, "category": category}
        if kind in ("validation", "missing_field") and field:
            err_code = code or ("REQUIRED_FIELD" if kind == "missing_field" else "INVALID_VALUE")
            detail = f'Property "{field}" is required' if kind == "missing_field" else message
            body["message"] = "Property values were not valid: " + json.dumps(
                [{"isValid": False, "message": detail, "error": err_code, "name": field}])
            body["errors"] = [{"message": detail, "code": err_code, "context": {"propertyName": [field]}}]
        return body

    def new_id(self, pstate):
        return str(_rng.randint(10_000_000_000, 99_999_999_999))

    def parse_write(self, req, body):
        props = body.get("properties")
        if not isinstance(props, dict):
            self.fail("bad_request", "Invalid input JSON: 'properties' must be an object")
        fields = {}
        for key, value in props.items():
            if key in self.READ_ONLY:
                self.fail("validation", f'Property "{key}" is read-only', field=key, code="READ_ONLY_VALUE")
            if isinstance(value, bool):
                value = "true" if value else "false"
            fields[key] = None if value is None else str(value)
        return fields

    def render(self, rec, req=None):
        wanted = None
        if req is not None and req.query.get("properties"):
            wanted = {p.strip() for v in req.query["properties"] for p in v.split(",") if p.strip()}
            wanted |= {"email", "firstname", "lastname"}
        props = {k: v for k, v in rec.fields.items() if wanted is None or k in wanted}
        props.update({"createdate": iso_ms(rec.created_ms), "lastmodifieddate": iso_ms(rec.updated_ms),
                      "hs_object_id": rec.id})
        return {"id": rec.id, "properties": props, "createdAt": iso_ms(rec.created_ms),
                "updatedAt": iso_ms(rec.updated_ms), "archived": False}

    def lookup(self, pstate, req, record_id):
        prop = req.q("idProperty")
        if prop and prop != "hs_object_id":
            rec = pstate.find_by_field(req.account, prop, record_id)
            if rec is None:
                self.fail("not_found", "Object not found.  objectId are usually numeric.")
            return rec
        rec = pstate.get_record(req.account, record_id)
        if rec is None:
            self.fail("not_found", "Object not found.  objectId are usually numeric.")
        return rec

    def h_list(self, pstate, req):
        limit = self.int_param(req, "limit", 10, 1, 100)
        after = self.int_param(req, "after", 0, 0, 10**12)
        records = [r for r in pstate.account_records(req.account) if r.seq >= after]
        page, rest = records[:limit], records[limit:]
        body = {"results": [self.render(r, req) for r in page]}
        if rest:
            nxt = str(rest[0].seq)
            link = f"{req.base_url}/{self.slug}/crm/v3/objects/contacts?" + urlencode({"limit": limit, "after": nxt})
            body["paging"] = {"next": {"after": nxt, "link": link}}
        return json_response(200, body)

    def _prop(self, rec, name):
        if name == "lastmodifieddate":
            return rec.updated_ms
        if name == "createdate":
            return rec.created_ms
        if name == "hs_object_id":
            return rec.id
        return rec.fields.get(name)

    def _filter_ok(self, rec, flt) -> bool:
        if not isinstance(flt, dict) or not flt.get("propertyName"):
            self.fail("bad_request", "Each filter needs a propertyName")
        name, op = flt["propertyName"], str(flt.get("operator", "EQ")).upper()
        actual = self._prop(rec, name)
        if op == "HAS_PROPERTY":
            return not _blank(actual)
        if op == "NOT_HAS_PROPERTY":
            return _blank(actual)
        if name in ("lastmodifieddate", "createdate"):
            def conv(v):
                t = parse_time(v)
                if t is None:
                    self.fail("bad_request", f"Invalid date value {v!r} for {name}", field=name)
                return t
        else:
            def conv(v):
                return "" if v is None else str(v).lower()
        if op in ("IN", "NOT_IN"):
            values = [conv(v) for v in flt.get("values") or []]
            return (conv(actual) in values) == (op == "IN")
        value = conv(flt.get("value"))
        if actual is None and name not in ("lastmodifieddate", "createdate"):
            return op == "NEQ"
        actual = conv(actual)
        ops = {"EQ": actual == value, "NEQ": actual != value, "GT": actual > value, "GTE": actual >= value,
               "LT": actual < value, "LTE": actual <= value,
               "CONTAINS_TOKEN": str(value).strip("*") in str(actual)}
        if op not in ops:
            self.fail("bad_request", f"Unsupported filter operator {op}")
        return ops[op]

    def h_search(self, pstate, req):
        body = self.read_json_object(req)
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list):
            self.fail("bad_request", "filterGroups must be a list")
        try:
            limit = int(body.get("limit", 10))
            after = int(body.get("after") or 0)
        except (TypeError, ValueError):
            self.fail("bad_request", "limit and after must be integers")
        limit = max(1, min(limit, 200))
        records = pstate.account_records(req.account)
        if groups:
            records = [r for r in records
                       if any(all(self._filter_ok(r, f) for f in (g or {}).get("filters", [])) for g in groups)]
        sorts = body.get("sorts") or []
        for sort in reversed(sorts):
            name = sort if isinstance(sort, str) else (sort or {}).get("propertyName")
            direction = "ASCENDING" if isinstance(sort, str) else str((sort or {}).get("direction", "ASCENDING"))
            if name:
                records.sort(key=lambda r, n=name: (self._prop(r, n) is None, str(self._prop(r, n) or "")
                                                    if n not in ("lastmodifieddate", "createdate")
                                                    else self._prop(r, n)),
                             reverse=direction.upper().startswith("DESC"))
        page = records[after:after + limit]
        props = body.get("properties")
        fake = req
        if isinstance(props, list) and props:
            fake = Request(req.method, req.path, req.full_path, {"properties": [",".join(props)]}, req.headers,
                           b"", req.base_url, req.account)
        out = {"total": len(records), "results": [self.render(r, fake) for r in page]}
        if after + limit < len(records):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return json_response(200, out)


# ====================================================================== Salesforce
SF_VERSION = r"/services/data/v(?P<version>\d+\.\d)"
SF_ID = r"(?P<id>[A-Za-z0-9]{15}|[A-Za-z0-9]{18})"


def sf_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


class Salesforce(OAuthProvider):
    slug = "salesforce"
    token_path = "/services/oauth2/token"
    authorize_path = "/services/oauth2/authorize"
    token_prefix = "00DSANDBOX!"
    statuspage = False
    retry_after = "none"
    status_overrides = {"rate_limited": 403, "duplicate": 400}
    required = ("LastName",)
    email_field = "Email"
    lineup_field = "Lineup_Id__c"
    allowed_fields = frozenset({"Email", "FirstName", "LastName", "Title", "Lineup_Id__c", "Phone", "Department",
                                "AccountId", "MailingCity", "MailingCountry", "Description"})
    DATE_FIELDS = {"CreatedDate": "created_ms", "LastModifiedDate": "updated_ms", "SystemModstamp": "updated_ms"}
    routes_spec = [
        ("POST", SF_VERSION + r"/sobjects/Contact/?", "h_create", "api"),
        ("GET", SF_VERSION + r"/sobjects/Contact/updated/?", "h_updated", "api"),
        ("GET", SF_VERSION + r"/sobjects/Contact/" + SF_ID + "/?", "h_get", "api"),
        ("PATCH", SF_VERSION + r"/sobjects/Contact/" + SF_ID + "/?", "h_update", "api"),
        ("GET", SF_VERSION + r"/query/?", "h_query", "api"),
        ("GET", SF_VERSION + r"/query/(?P<locator>01g[A-Za-z0-9]+-\d+)/?", "h_query_more", "api"),
    ]

    def route_spec(self):
        yield from super().route_spec()
        yield ("GET", r"/v1/instances/(?P<instance>[^/]+)/status/?", "h_trust_status", "status")

    def token_error(self, kind, message):
        code, description = {
            "invalid_request": ("invalid_request", message),
            "unsupported_grant_type": ("unsupported_grant_type", "grant type not supported"),
            "invalid_client": ("invalid_client", "invalid client credentials"),
            "bad_code": ("invalid_grant", "invalid authorization code"),
            "redirect_mismatch": ("redirect_uri_mismatch", "redirect_uri must match configuration"),
            "bad_refresh": ("invalid_grant", "expired access/refresh token"),
        }[kind]
        return json_response(400, {"error": code, "error_description": description})

    def instance_url(self, base_url: str) -> str:
        return f"{base_url}/{self.slug}"

    def token_body(self, req, access, ttl, refresh, grant):
        body = {"access_token": access, "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
                "scope": "refresh_token api", "instance_url": self.instance_url(req.base_url),
                "id": f"https://login.salesforce.com/id/00DSANDBOX000001/005SANDBOX{req.account}",
                "token_type": "Bearer", "issued_at": str(now_ms())}
        if grant == "authorization_code":
            body["refresh_token"] = refresh  # no rotation: the refresh grant returns no refresh token
        return body

    def credentials(self, pstate, account, base_url):
        creds = super().credentials(pstate, account, base_url)
        creds["instance_url"] = self.instance_url(base_url)
        return creds

    def rate_headers(self, info):
        return {"Sforce-Limit-Info": f"api-usage={info.used}/{info.limit}"}

    def error_body(self, kind, message, *, field=None, existing_id=None, code=None):
        if kind in ("auth_invalid", "auth_expired"):
            return [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        if kind == "rate_limited":
            return [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        if kind == "missing_field":
            return [{"message": f"Required fields are missing: [{field}]", "errorCode": "REQUIRED_FIELD_MISSING",
                     "fields": [field]}]
        if kind == "validation":
            return [{"message": message, "errorCode": code or "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                     "fields": [field] if field else []}]
        if kind == "duplicate":
            url = f"/services/data/v59.0/sobjects/Contact/{existing_id}"
            return [{
                "duplicateResult": {
                    "allowSave": False, "duplicateRule": "Standard_Contact_Duplicate_Rule",
                    "duplicateRuleEntityType": "Contact",
                    "errorMessage": "You're creating a duplicate record. We recommend you use an existing record "
                                    "instead.",
                    "matchResults": [{
                        "entityType": "Contact", "errors": [], "matchEngine": "ExactMatchEngine",
                        "matchRecords": [{"additionalInformation": [], "fieldDiffs": [], "matchConfidence": 100.0,
                                          "record": {"attributes": {"type": "Contact", "url": url},
                                                     "Id": existing_id}}],
                        "rule": "Standard_Contact_Match_Rule_v1_1", "size": 1, "success": True}],
                },
                "errorCode": "DUPLICATES_DETECTED",
                "message": f"Use one of these records? Existing ID: {existing_id}",
                "fields": [],
            }]
        error_code = code or {
            "forbidden": "INSUFFICIENT_ACCESS", "unavailable": "SERVER_UNAVAILABLE", "not_found": "NOT_FOUND",
            "bad_request": "JSON_PARSER_ERROR", "method_not_allowed": "METHOD_NOT_ALLOWED",
        }[kind]
        if kind == "not_found" and message == "Resource not found":
            message = "The requested resource does not exist"
        return [{"message": message, "errorCode": error_code}]

    def unknown_field_message(self, name):
        return f"No such column '{name}' on sobject of type Contact"

    def new_id(self, pstate):
        return "003" + _random_chars(15)

    def parse_write(self, req, body):
        return {k: v for k, v in body.items() if k != "attributes"}

    def write(self, pstate, account, fields, rec):
        for name in fields:
            if name in self.DATE_FIELDS or name in ("Id", "IsDeleted"):
                self.fail("validation", f"Unable to create/update fields: {name}. Please check the security "
                          "settings of this field and verify that it is read/write for your profile or "
                          "permission set.", field=name, code="INVALID_FIELD_FOR_INSERT_UPDATE")
        return super().write(pstate, account, fields, rec)

    def _attributes(self, rec, req):
        version = (req.params.get("version") if req else None) or "59.0"
        return {"type": "Contact", "url": f"/services/data/v{version}/sobjects/Contact/{rec.id}"}

    def render(self, rec, req=None):
        out = {"attributes": self._attributes(rec, req), "Id": rec.id, "IsDeleted": False}
        for name in sorted(self.allowed_fields):
            out[name] = rec.fields.get(name)
        out.update({"CreatedDate": sf_date(rec.created_ms), "LastModifiedDate": sf_date(rec.updated_ms),
                    "SystemModstamp": sf_date(rec.updated_ms)})
        return out

    def created(self, rec, req):
        return json_response(201, {"id": rec.id, "success": True, "errors": []})

    def updated(self, rec, req):
        return Response(204)

    def h_updated(self, pstate, req):
        start, end = req.q("start"), req.q("end")
        if not start or not end:
            self.fail("bad_request", "Both start and end are required", code="MISSING_ARGUMENT")
        start_ms, end_ms = parse_time(start), parse_time(end)
        if start_ms is None or end_ms is None:
            self.fail("bad_request", "start and end must be valid ISO 8601 date-times",
                      code="INVALID_REPLICATION_DATE")
        if end_ms < start_ms:
            self.fail("bad_request", "end must be after start", code="INVALID_REPLICATION_DATE")
        covered = min(end_ms, now_ms())
        ids = [r.id for r in pstate.account_records(req.account) if start_ms <= r.updated_ms <= end_ms]
        return json_response(200, {"ids": ids, "latestDateCovered": sf_date(covered)})

    # --- a very small SOQL: SELECT f, ... FROM Contact [WHERE a op v [AND ...]] [ORDER BY ...] [LIMIT n]
    SOQL = re.compile(r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
                      r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?"
                      r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$", re.IGNORECASE | re.DOTALL)
    COND = re.compile(r"^\s*(?P<field>\w+)\s*(?P<op>=|!=|<=|>=|<|>)\s*(?P<value>'(?:[^'\\]|\\.)*'|\S+)\s*$")

    def _known(self, name):
        return name == "Id" or name in self.allowed_fields or name in self.DATE_FIELDS

    def _value(self, rec, name):
        if name == "Id":
            return rec.id
        if name in self.DATE_FIELDS:
            return getattr(rec, self.DATE_FIELDS[name])
        return rec.fields.get(name)

    def _parse_soql(self, q: str):
        found = self.SOQL.match(q or "")
        if not found:
            self.fail("bad_request", f"unexpected token in query: {q!r}", code="MALFORMED_QUERY")
        if found["object"].lower() != "contact":
            self.fail("bad_request", f"sObject type '{found['object']}' is not supported.", code="INVALID_TYPE")
        names = [f.strip() for f in found["fields"].split(",") if f.strip()]
        conds = []
        if found["where"]:
            for part in re.split(r"\s+AND\s+", found["where"], flags=re.IGNORECASE):
                cond = self.COND.match(part)
                if not cond:
                    self.fail("bad_request", f"unsupported condition: {part!r}", code="MALFORMED_QUERY")
                conds.append((cond["field"], cond["op"], cond["value"]))
        for name in names + [c[0] for c in conds]:
            if not self._known(name):
                self.fail("bad_request", f"No such column '{name}' on entity 'Contact'.", code="INVALID_FIELD")
        return names, conds, int(found["limit"]) if found["limit"] else None

    def _cond_ok(self, rec, field, op, raw):
        actual = self._value(rec, field)
        if raw.lower() == "null":
            value = None
        elif raw.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", raw[1:-1])
        else:
            value = raw
        if field in self.DATE_FIELDS:
            value = parse_time(value)
            if value is None:
                self.fail("bad_request", f"invalid date/time: {raw}", code="MALFORMED_QUERY")
        elif value is not None:
            value, actual = str(value).lower(), None if actual is None else str(actual).lower()
        if value is None or actual is None:
            return (actual == value) if op == "=" else (actual != value) if op == "!=" else False
        return {"=": actual == value, "!=": actual != value, "<": actual < value, "<=": actual <= value,
                ">": actual > value, ">=": actual >= value}[op]

    def _query_page(self, pstate, req, locator_key, ids, names, pos, batch):
        records = [pstate.get_record(req.account, i) for i in ids]
        records = [r for r in records if r is not None]
        page = records[pos:pos + batch]
        out = {"totalSize": len(records), "done": pos + batch >= len(records), "records": []}
        for rec in page:
            row = {"attributes": self._attributes(rec, req)}
            for name in names:
                value = self._value(rec, name)
                row[name] = sf_date(value) if name in self.DATE_FIELDS else value
            out["records"].append(row)
        if not out["done"]:
            version = req.params.get("version") or "59.0"
            pstate.query_locators[locator_key] = (req.account, ids, names, batch)
            out["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator_key}-{pos + batch}"
        return json_response(200, out)

    def _batch_size(self, req) -> int:
        options = req.header("Sforce-Query-Options") or ""
        found = re.search(r"batchSize=(\d+)", options)
        return max(1, min(int(found.group(1)), 2000)) if found else 2000

    def h_query(self, pstate, req):
        names, conds, limit = self._parse_soql(req.q("q") or "")
        records = [r for r in pstate.account_records(req.account)
                   if all(self._cond_ok(r, f, op, v) for f, op, v in conds)]
        if limit is not None:
            records = records[:limit]
        key = "01g" + _random_chars(15)
        return self._query_page(pstate, req, key, [r.id for r in records], names, 0, self._batch_size(req))

    def h_query_more(self, pstate, req):
        key, _, pos = req.params["locator"].rpartition("-")
        entry = pstate.query_locators.get(key)
        if entry is None or entry[0] != req.account:
            self.fail("not_found", "invalid query locator", code="INVALID_QUERY_LOCATOR", status=400)
        _, ids, names, batch = entry
        return self._query_page(pstate, req, key, ids, names, int(pos), batch)

    def h_trust_status(self, pstate, req):
        health = self.health(pstate)
        status = {"ok": "OK", "degraded": "MINOR_INCIDENT_CORE", "outage": "MAJOR_INCIDENT_CORE"}[health]
        since = iso_ms(pstate.mode_since_ms)
        incidents = [] if health == "ok" else [{
            "id": pstate.mode_since_ms, "message": {"maintenanceId": None}, "isCore": True,
            "affectsAll": False, "createdAt": since, "updatedAt": since,
            "IncidentImpacts": [{"type": "serviceDisruption" if health == "outage" else "performanceDegradation",
                                 "severity": "major" if health == "outage" else "minor",
                                 "startTime": since, "endTime": None}],
        }]
        return json_response(200, {
            "key": req.params["instance"].upper(), "location": "NA", "environment": "production",
            "releaseVersion": "Summer '25 Patch 10", "releaseNumber": "256.10", "status": status,
            "isActive": True, "Products": [{"key": "Salesforce_Services", "order": 1}],
            "Incidents": incidents, "Maintenances": [], "GeneralMessages": [],
        })


# ====================================================================== Greenhouse
class Greenhouse(Provider):
    slug = "greenhouse"
    auth_schemes = ("basic",)
    retry_after = "unix"
    status_overrides = {"validation": 422, "missing_field": 422, "duplicate": 422}
    required = ("first_name", "last_name")
    routes_spec = [
        ("POST", r"/v1/candidates", "h_create", "api"),
        ("GET", r"/v1/candidates", "h_list", "api"),
        ("GET", r"/v1/candidates/(?P<id>\d+)", "h_get", "api"),
        ("PATCH", r"/v1/candidates/(?P<id>\d+)", "h_update", "api"),
    ]

    def missing_credentials_message(self):
        return "Missing Basic Auth credentials"

    def error_body(self, kind, message, *, field=None, existing_id=None, code=None):
        if kind in ("auth_invalid", "auth_expired"):
            return {"message": "Invalid Basic Auth credentials" if message == "Invalid credentials" else message}
        if kind in ("validation", "missing_field", "duplicate"):
            if kind == "duplicate":
                message = f"A candidate with this email address already exists. Existing ID: {existing_id}"
            return {"message": "Validation error", "errors": [{"message": message, "field": field}]}
        if kind == "bad_request" and field:
            return {"message": "Validation error", "errors": [{"message": message, "field": field}]}
        return {"message": message}

    def new_id(self, pstate):
        return str(_rng.randint(10_000_000, 99_999_999))

    def parse_write(self, req, body):
        fields = {k: body[k] for k in ("first_name", "last_name", "company", "title") if k in body}
        if "email_addresses" in body:
            emails = body["email_addresses"]
            if not isinstance(emails, list) or any(not isinstance(e, dict) for e in emails):
                self.fail("validation", "email_addresses must be a list of objects", field="email_addresses")
            fields["email"] = emails[0].get("value") if emails else None
        custom = body.get("custom_fields")
        if isinstance(custom, list):
            for item in custom:
                if isinstance(item, dict) and (item.get("name_key") == "lineup_id" or item.get("id") == "lineup_id"):
                    fields["lineup_id"] = item.get("value")
        elif isinstance(custom, dict) and "lineup_id" in custom:
            fields["lineup_id"] = custom["lineup_id"]
        return fields

    def h_create(self, pstate, req):
        self._on_behalf_of(req)
        return super().h_create(pstate, req)

    def h_update(self, pstate, req):
        self._on_behalf_of(req)
        return super().h_update(pstate, req)

    def _on_behalf_of(self, req):
        if not (req.header("On-Behalf-Of") or "").strip():
            self.fail("forbidden", "Missing On-Behalf-Of header: write requests must name the acting user")

    def render(self, rec, req=None):
        f = rec.fields
        lineup = f.get("lineup_id")
        return {
            "id": int(rec.id), "first_name": f.get("first_name"), "last_name": f.get("last_name"),
            "company": f.get("company"), "title": f.get("title"), "created_at": iso_ms(rec.created_ms),
            "updated_at": iso_ms(rec.updated_ms), "last_activity": iso_ms(rec.updated_ms), "is_private": False,
            "photo_url": None, "attachments": [], "application_ids": [], "phone_numbers": [], "addresses": [],
            "email_addresses": [{"value": f["email"], "type": "personal"}] if f.get("email") else [],
            "website_addresses": [], "social_media_addresses": [], "recruiter": None, "coordinator": None,
            "can_email": True, "tags": [], "applications": [], "educations": [], "employments": [],
            "custom_fields": {"lineup_id": lineup},
            "keyed_custom_fields": {"lineup_id": {"name": "Lineup ID", "type": "short_text", "value": lineup}}
            if lineup is not None else {},
        }

    def h_list(self, pstate, req):
        per_page = self.int_param(req, "per_page", 100, 1, 500)
        page = self.int_param(req, "page", 1, 1, 10**9)
        updated_after = self.time_param(req, "updated_after")
        updated_before = self.time_param(req, "updated_before")
        created_after = self.time_param(req, "created_after")
        email = req.q("email")
        records = [
            r for r in pstate.account_records(req.account)
            if (updated_after is None or r.updated_ms >= updated_after)
            and (updated_before is None or r.updated_ms < updated_before)
            and (created_after is None or r.created_ms >= created_after)
            and (email is None or str(r.fields.get("email", "")).lower() == email.lower())
        ]
        last = max(1, math.ceil(len(records) / per_page))
        chunk = records[(page - 1) * per_page: page * per_page]
        params = {k: v[0] for k, v in req.query.items() if k not in ("page", "per_page")}

        def link(n):
            query = urlencode({**params, "page": n, "per_page": per_page})
            return f"<{req.base_url}/{self.slug}/v1/candidates?{query}>"

        links = []
        if page < last:
            links.append(f'{link(page + 1)}; rel="next"')
        if page > 1:
            links.append(f'{link(page - 1)}; rel="prev"')
        links.append(f'{link(last)}; rel="last"')
        return json_response(200, [self.render(r, req) for r in chunk], {"Link": ", ".join(links)})


# ====================================================================== Lever
class Lever(OAuthProvider):
    slug = "lever"
    token_path = "/oauth/token"
    authorize_path = "/oauth/authorize"
    retry_after = "none"
    required = ("name",)
    routes_spec = [
        ("POST", r"/v1/opportunities", "h_create", "api"),
        ("GET", r"/v1/opportunities", "h_list", "api"),
        ("GET", r"/v1/opportunities/(?P<id>[0-9a-f-]{36})", "h_get", "api"),
        ("PUT", r"/v1/opportunities/(?P<id>[0-9a-f-]{36})", "h_update", "api"),
    ]

    def token_body(self, req, access, ttl, refresh, grant):
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
                "scope": "opportunities:write:admin offline_access", "expires_in": ttl}

    def expired_message(self, ago):
        return "Expired access token"

    def error_body(self, kind, message, *, field=None, existing_id=None, code=None):
        lever_code = {
            "auth_invalid": "Unauthorized", "auth_expired": "Unauthorized", "forbidden": "Forbidden",
            "rate_limited": "TooManyRequests", "validation": "BadRequestError", "missing_field": "BadRequestError",
            "duplicate": "ConflictError", "unavailable": "ServiceUnavailable", "not_found": "ResourceNotFound",
            "bad_request": "BadRequestError", "method_not_allowed": "MethodNotAllowed",
        }[kind]
        if kind == "auth_invalid":
            message = "Invalid access token" if message == "Invalid credentials" else message
        if kind == "duplicate":
            message = f"An opportunity with this email already exists. Existing ID: {existing_id}"
        return {"code": lever_code, "message": message}

    def parse_write(self, req, body):
        fields = {k: body[k] for k in ("name", "headline") if k in body}
        if "emails" in body:
            emails = body["emails"]
            if not isinstance(emails, list):
                self.fail("validation", "emails must be a list of strings", field="emails")
            fields["email"] = emails[0] if emails else None
        if "tags" in body:
            tags = body["tags"] if isinstance(body["tags"], list) else []
            lineup = [t[len("lineup:"):] for t in tags if isinstance(t, str) and t.startswith("lineup:")]
            fields["lineup_id"] = lineup[0] if lineup else None
        return fields

    def h_create(self, pstate, req):
        if not req.q("perform_as"):
            self.fail("bad_request", "Missing required query parameter: perform_as")
        return super().h_create(pstate, req)

    def render(self, rec, req=None):
        f = rec.fields
        base = req.base_url if req else ""
        return {
            "id": rec.id, "name": f.get("name"), "headline": f.get("headline"),
            "contact": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lever-contact:{rec.id}")),
            "emails": [f["email"]] if f.get("email") else [], "phones": [], "links": [], "location": None,
            "tags": [f"lineup:{f['lineup_id']}"] if f.get("lineup_id") else [],
            "stage": "lead-new", "confidentiality": "non-confidential", "origin": "sourced", "sources": [],
            "owner": None, "followers": [], "applications": [], "archived": None,
            "createdAt": rec.created_ms, "updatedAt": rec.updated_ms, "lastInteractionAt": rec.updated_ms,
            "lastAdvancedAt": rec.created_ms, "snoozedUntil": None, "isAnonymized": False, "dataProtection": None,
            "urls": {"list": f"{base}/{self.slug}/v1/opportunities",
                     "show": f"{base}/{self.slug}/v1/opportunities/{rec.id}"},
        }

    def created(self, rec, req):
        return json_response(201, {"data": self.render(rec, req)})

    def shown(self, rec, req):
        return json_response(200, {"data": self.render(rec, req)})

    updated = shown

    def h_list(self, pstate, req):
        limit = self.int_param(req, "limit", 100, 1, 100)
        offset = req.q("offset")
        after = 0
        if offset:
            try:
                after = int(base64.urlsafe_b64decode(offset.encode() + b"==").decode())
            except (ValueError, binascii.Error, UnicodeDecodeError):
                self.fail("bad_request", f"Invalid offset: {offset!r}")
        start = self.time_param(req, "updated_at_start")
        end = self.time_param(req, "updated_at_end")
        created_start = self.time_param(req, "created_at_start")
        email = req.q("email")
        records = [
            r for r in pstate.account_records(req.account)
            if r.seq >= after and (start is None or r.updated_ms >= start) and (end is None or r.updated_ms <= end)
            and (created_start is None or r.created_ms >= created_start)
            and (email is None or str(r.fields.get("email", "")).lower() == email.lower())
        ]
        page, rest = records[:limit], records[limit:]
        body = {"data": [self.render(r, req) for r in page], "hasNext": bool(rest)}
        if rest:
            body["next"] = base64.urlsafe_b64encode(str(rest[0].seq).encode()).decode().rstrip("=")
        return json_response(200, body)


# ====================================================================== Workday
WD_PATH = r"/ccx/api/recruiting/v4/(?P<tenant>[^/]+)/prospects"


class Workday(Provider):
    slug = "workday"
    required = ("firstName", "lastName")
    key_prefix = "wd_"
    routes_spec = [
        ("POST", WD_PATH, "h_create", "api"),
        ("GET", WD_PATH, "h_list", "api"),
        ("GET", WD_PATH + r"/(?P<id>[0-9a-f]{32})", "h_get", "api"),
        ("PATCH", WD_PATH + r"/(?P<id>[0-9a-f]{32})", "h_update", "api"),
    ]

    def error_body(self, kind, message, *, field=None, existing_id=None, code=None):
        if kind in ("validation", "missing_field", "duplicate"):
            if kind == "duplicate":
                message = f"A prospect with this email already exists. Existing ID: {existing_id}"
            summary = {"missing_field": "Validation failed: required field missing", "validation":
                       "Validation failed", "duplicate": "Duplicate prospect"}[kind]
            return {"error": summary, "errors": [{"error": message, "field": field}]}
        if kind in ("auth_invalid", "auth_expired"):
            return {"error": "invalid_token", "errors": [{"error": message, "field": "Authorization"}]}
        body = {"error": message}
        if field:
            body["errors"] = [{"error": message, "field": field}]
        return body

    def check_scope(self, pstate, req):
        if req.params.get("tenant") != req.account:
            self.fail("auth_invalid", f"The credentials are not valid for tenant {req.params.get('tenant')!r}")

    def credentials(self, pstate, account, base_url):
        return {"api_key": pstate.issue_api_key(account, self.key_prefix), "tenant": account}

    def new_id(self, pstate):
        return secrets.token_hex(16)

    def parse_write(self, req, body):
        fields = {k: body[k] for k in ("firstName", "lastName", "email") if k in body}
        if "externalId" in body:
            fields["lineup_id"] = body["externalId"]
        return fields

    def render(self, rec, req=None):
        f = rec.fields
        base = req.base_url if req else ""
        return {
            "id": rec.id, "descriptor": " ".join(x for x in (f.get("firstName"), f.get("lastName")) if x),
            "href": f"{base}/{self.slug}/ccx/api/recruiting/v4/{rec.account}/prospects/{rec.id}",
            "firstName": f.get("firstName"), "lastName": f.get("lastName"), "email": f.get("email"),
            "externalId": f.get("lineup_id"), "createdOn": iso_ms(rec.created_ms),
            "updatedOn": iso_ms(rec.updated_ms),
        }

    def h_list(self, pstate, req):
        limit = self.int_param(req, "limit", 20, 1, 100)
        offset = self.int_param(req, "offset", 0, 0, 10**9)
        since = self.time_param(req, "updatedFrom")
        records = [r for r in pstate.account_records(req.account) if since is None or r.updated_ms >= since]
        return json_response(200, {"total": len(records),
                                   "data": [self.render(r, req) for r in records[offset:offset + limit]]})


# ====================================================================== PandaDoc
class PandaDoc(Provider):
    slug = "pandadoc"
    auth_schemes = ("api-key",)
    required = ("name",)
    dedupe = False  # many documents may go to one recipient
    email_field = "recipient_email"
    routes_spec = [
        ("POST", r"/public/v1/documents", "h_create", "api"),
        ("GET", r"/public/v1/documents", "h_list", "api"),
        ("GET", r"/public/v1/documents/(?P<id>[A-Za-z0-9]{22})(?:/details)?", "h_get", "api"),
        ("PATCH", r"/public/v1/documents/(?P<id>[A-Za-z0-9]{22})", "h_update", "api"),
    ]

    def error_body(self, kind, message, *, field=None, existing_id=None, code=None):
        if kind in ("validation", "missing_field", "duplicate") and field:
            detail = "This field is required." if kind == "missing_field" else message
            return {"type": "request_error", "detail": {field: [detail]}}
        kind_type = {"auth_invalid": "authorization_error", "auth_expired": "authorization_error",
                     "forbidden": "permission_error", "unavailable": "server_error",
                     "method_not_allowed": "request_error"}.get(kind, "request_error")
        return {"type": kind_type, "detail": message}

    def rate_limit_message(self, info):
        wait = max(1, int(math.ceil(info.reset_at - time.time())))
        return f"Request was throttled. Expected available in {wait} seconds."

    def missing_credentials_message(self):
        return "Authentication credentials were not provided."

    def new_id(self, pstate):
        return _random_chars(22)

    def create_defaults(self):
        return {"status": "document.draft"}

    def parse_write(self, req, body):
        fields = {k: body[k] for k in ("name", "status") if k in body}
        if "recipients" in body:
            recipients = body["recipients"]
            if not isinstance(recipients, list) or any(not isinstance(r, dict) for r in recipients):
                self.fail("validation", "recipients must be a list of objects", field="recipients")
            fields["recipient_email"] = recipients[0].get("email") if recipients else None
        if "metadata" in body:
            metadata = body["metadata"] if isinstance(body["metadata"], dict) else {}
            fields["lineup_id"] = metadata.get("lineup_id")
        return fields

    def render(self, rec, req=None):
        f = rec.fields
        return {
            "id": rec.id, "name": f.get("name"), "status": f.get("status"),
            "date_created": iso_ms(rec.created_ms), "date_modified": iso_ms(rec.updated_ms),
            "date_completed": None, "expiration_date": None, "version": "2",
            "recipients": [{"email": f["recipient_email"], "first_name": None, "last_name": None, "role": "",
                            "recipient_type": "signer", "has_completed": False}] if f.get("recipient_email") else [],
            "metadata": {"lineup_id": f["lineup_id"]} if f.get("lineup_id") is not None else {},
        }

    def h_list(self, pstate, req):
        page = self.int_param(req, "page", 1, 1, 10**9)
        count = self.int_param(req, "count", 50, 1, 100)
        since = self.time_param(req, "modified_from")
        lineup, status = req.q("metadata_lineup_id"), req.q("status")
        records = [
            r for r in pstate.account_records(req.account)
            if (since is None or r.updated_ms >= since)
            and (lineup is None or str(r.fields.get("lineup_id")) == lineup)
            and (status is None or r.fields.get("status") == status)
        ]
        chunk = records[(page - 1) * count: page * count]
        return json_response(200, {"results": [self.render(r, req) for r in chunk]})


# ====================================================================== Clearbit
class Clearbit(Provider):
    slug = "clearbit"
    auth_schemes = ("bearer", "basic")
    key_prefix = "sk_"
    dedupe = False
    routes_spec = [("GET", r"/v2/people/find", "h_find", "api")]

    def error_body(self, kind, message, *, field=None, existing_id=None, code=None):
        error_type = code or {
            "auth_invalid": "auth_required", "auth_expired": "auth_required", "forbidden": "forbidden",
            "rate_limited": "rate_limit", "validation": "invalid_request", "missing_field": "invalid_request",
            "duplicate": "invalid_request", "unavailable": "service_unavailable", "not_found": "unknown_record",
            "bad_request": "invalid_request", "method_not_allowed": "invalid_request",
        }[kind]
        return {"error": {"type": error_type, "message": message}}

    def render(self, rec, req=None):
        f = rec.fields
        name = f.get("name") or ""
        given, _, family = name.partition(" ")
        return {
            "id": rec.id, "name": {"fullName": name or None, "givenName": given or None,
                                   "familyName": family or None},
            "email": f.get("email"), "location": None, "timeZone": None, "utcOffset": None, "bio": None,
            "site": None, "avatar": None,
            "employment": {"domain": None, "name": f.get("company"), "title": f.get("title"), "role": None,
                           "subRole": None, "seniority": None},
            "facebook": {"handle": None}, "github": {"handle": None}, "twitter": {"handle": None},
            "linkedin": {"handle": None}, "fuzzy": False, "emailProvider": False,
            "indexedAt": iso_ms(rec.updated_ms),
        }

    def h_find(self, pstate, req):
        email = (req.q("email") or "").strip()
        if not email or "@" not in email:
            self.fail("validation", "A valid email parameter is required.", code="email_invalid", status=422)
        rec = pstate.find_by_field(req.account, "email", email)
        if rec is None:
            self.fail("not_found", f"Unknown person: no record found for {email}.")
        return json_response(200, self.render(rec, req))


PROVIDER_CLASSES: dict[str, type[Provider]] = {
    cls.slug: cls for cls in (HubSpot, Salesforce, Greenhouse, Lever, Workday, PandaDoc, Clearbit)
}


def build_providers(client_id: str, client_secret: str) -> dict[str, Provider]:
    return {slug: cls(client_id, client_secret) for slug, cls in PROVIDER_CLASSES.items()}
