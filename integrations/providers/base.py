"""One HTTP client for every provider: timeouts, a shared pooled session, redacted call records, typed errors.

Adapters only describe their differences (paths, auth header, field flattening, error shapes). Clients take
plain values and return plain values or raise ProviderError; they never touch Django or the ORM.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import requests
from requests.adapters import HTTPAdapter

from integrations.access.redaction import redact_text
from integrations.providers.errors import (
    ProviderError,
    UnsupportedOperation,
)
from integrations.providers.jsonlimits import JsonRefused, loads_limited
from integrations.providers.types import CallInfo, Page, ProviderStatus, RemoteRecord, TokenSet, WebhookEvent

logger = logging.getLogger("integrations.providers")

EXCERPT_CHARS = 2000
DEFAULT_RETRY_AFTER_CAP = 900.0

# --------------------------------------------------------------------------------------------- helpers


def parse_retry_after(
    value: str | None, *, now: datetime | None = None, cap: float = DEFAULT_RETRY_AFTER_CAP
) -> float | None:
    """Seconds to wait from a Retry-After value: delta seconds, an HTTP date or (Greenhouse) a Unix timestamp.

    Past moments and negative values give 0; long waits are capped; anything unparseable gives None.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    seconds: float | None
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if not math.isfinite(number):
            return None
        # A delta of more than ~30 years is not a delta: it is an epoch timestamp (Greenhouse).
        seconds = number - now.timestamp() if number > 1e9 else number
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return float(min(max(seconds, 0.0), cap))


def parse_timestamp(value: Any) -> datetime | None:
    """An aware datetime from an ISO 8601 string or epoch seconds/milliseconds; None when absent, unparseable
    or outside 1970-9000 (issue 13: a year-1 time made the screens answer 500 west of UTC)."""
    moment = _parse_timestamp(value)
    if moment is None or not 1970 <= moment.year <= 9000:
        return None
    return moment


def _parse_timestamp(value: Any) -> datetime | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\d{9,}(\.\d+)?", value)):
        number = float(value)
        if number > 1e11:  # milliseconds
            number /= 1000.0
        try:
            return datetime.fromtimestamp(number, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, seconds precision."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def header_value(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header from any mapping (plain dict, Django's request.headers, requests'), case-insensitively."""
    if not headers:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        value = None
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if str(key).lower() == lowered or str(key).lower() == "http_" + lowered.replace("-", "_"):
            return val
    return None


def hmac_equal(expected: str | bytes, given: str | bytes | None) -> bool:
    """Constant-time comparison of two signatures."""
    import hmac as _hmac

    if given is None:
        return False
    if isinstance(expected, str):
        expected = expected.encode()
    if isinstance(given, str):
        given = given.encode()
    return _hmac.compare_digest(expected, given)


def hmac_sha256(secret: str | bytes, message: str | bytes) -> bytes:
    import hmac as _hmac

    if isinstance(secret, str):
        secret = secret.encode()
    if isinstance(message, str):
        message = message.encode()
    return _hmac.new(secret, message, hashlib.sha256).digest()


def hmac_hex(secret: str | bytes, message: str | bytes) -> str:
    return hmac_sha256(secret, message).hex()


def hmac_b64(secret: str | bytes, message: str | bytes) -> str:
    return base64.b64encode(hmac_sha256(secret, message)).decode()


def load_json_body(body: bytes | str) -> Any:
    """A webhook body as JSON (its depth checked before parsing), or ProviderError(validation)."""
    try:
        return loads_limited(body)
    except JsonRefused as e:
        raise ProviderError("validation", f"webhook body is {e.message}") from None


def _excerpt(text: str) -> str:
    text = redact_text(text[:200_000])
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


# One pooled session per process, shared by every client unless a caller brings its own.
_session_lock = threading.Lock()
_shared_session: requests.Session | None = None


def shared_session() -> requests.Session:
    """The process-wide pooled session (keep-alive connections reused across clients and tenants)."""
    global _shared_session
    with _session_lock:
        if _shared_session is None:
            session = requests.Session()
            # Retries are the sync engine's decision (it knows the quota and the backoff), not urllib3's.
            adapter = HTTPAdapter(pool_connections=16, pool_maxsize=32, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = "lineup-ops/0.1 (+integrations)"
            _shared_session = session
        return _shared_session


# Error codes and message fragments shared by the providers' error shapes.
_CODE_KEYS = ("category", "errorCode", "error", "code", "status", "errorType", "type")
_MESSAGE_KEYS = ("message", "error_description", "detail", "error", "msg")
_EXPIRED_CODES = {"EXPIRED_AUTHENTICATION", "INVALID_SESSION_ID"}
_REFRESH_CODES = {"INVALID_GRANT", "BAD_REFRESH_TOKEN"}
_CLIENT_CODES = {"INVALID_CLIENT", "BAD_CLIENT_ID", "UNAUTHORIZED_CLIENT", "BAD_CLIENT_SECRET"}
_RATE_CODES = {"REQUEST_LIMIT_EXCEEDED", "RATE_LIMIT", "RATE_LIMITED", "TOO_MANY_REQUESTS"}
_DUPLICATE_CODES = {"DUPLICATES_DETECTED", "DUPLICATE_VALUE", "CONFLICT", "DUPLICATE", "DUPLICATE_RECORD"}
_MISSING_CODES = {"REQUIRED_FIELD_MISSING", "MISSING_FIELD", "REQUIRED"}
_MISSING_RE = re.compile(
    r"\brequired\b|\bmissing\b|can(?:no|')t be (?:blank|empty|null)|must not be (?:blank|empty|null)|is blank|must be present",
    re.IGNORECASE,
)
_DUPLICATE_RE = re.compile(r"already exists|already been taken|already in use|\bduplicate", re.IGNORECASE)
_EXISTING_ID_RE = re.compile(
    r"existing(?:\s+(?:record|contact|candidate|object))?[\s_-]*id\s*[:=#]?\s*['\"]?([A-Za-z0-9][A-Za-z0-9_\-]*)",
    re.IGNORECASE,
)
_EXISTING_ID_KEYS = (
    "existing_id",
    "existingId",
    "existingRecordId",
    "existing_record_id",
    "duplicateId",
    "duplicate_id",
)


class BaseClient:
    """Shared HTTP mechanics; subclasses set the class attributes and implement the operations they support."""

    provider: ClassVar[str] = ""
    auth_type: ClassVar[str] = "api_key"  # "oauth2" | "api_key"
    token_endpoint: ClassVar[str] = ""
    authorize_endpoint: ClassVar[str] = ""
    default_scopes: ClassVar[tuple[str, ...]] = ()
    # Header name prefixes (lower case) worth keeping in CallInfo.rate_limit.
    rate_limit_header_prefixes: ClassVar[tuple[str, ...]] = ("x-ratelimit-", "ratelimit-", "retry-after")
    # Provider field names that error bodies use, mapped to our flat names (e.g. "email_addresses" -> "email").
    field_aliases: ClassVar[dict[str, str]] = {}
    known_fields: ClassVar[tuple[str, ...]] = ()
    supports_webhooks: ClassVar[bool] = False
    # The provider keeps any number of records with the same email (it refuses no create as a duplicate), but
    # can be asked for the record carrying our lineup_id: find_by_external_id. A create whose answer was lost
    # is then looked up before it is made again, instead of being adopted from the duplicate error.
    finds_by_external_id: ClassVar[bool] = False
    # Records one batch call may create or update (HubSpot batch/*, Salesforce sObject Collections); 0: none,
    # one call per record. A batch is one call, one unit of the provider's quota.
    batch_size: ClassVar[int] = 0
    # `calls` keeps the most recent exchanges only, so a long sync does not hoard excerpts in memory.
    max_calls: ClassVar[int] = 1000

    def __init__(
        self,
        *,
        base_url: str,
        credentials: Mapping[str, Any] | None = None,
        client_id: str = "",
        client_secret: str = "",
        timeout: float = 10.0,
        session: requests.Session | None = None,
        retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP,
        url_guard: Callable[[str], None] | None = None,
    ):
        if not base_url:
            raise ValueError(f"{self.provider}: base_url is required")
        self.base_url = base_url.rstrip("/")
        self.credentials: dict[str, Any] = dict(credentials or {})
        self.client_id = client_id
        self.client_secret = client_secret
        # Never wait forever: a missing or silly timeout falls back to the default.
        self.timeout = float(timeout) if timeout and timeout > 0 else 10.0
        self.session = session or shared_session()
        self.retry_after_cap = retry_after_cap
        # Issue 13: called with the URL of every request that carries credentials; raises to refuse it.
        self.url_guard = url_guard
        self.last_call: CallInfo | None = None
        self.calls: list[CallInfo] = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    # ------------------------------------------------------------------------------------- HTTP core

    def drain_calls(self) -> list[CallInfo]:
        """The exchanges recorded since the last drain (oldest first), forgetting them."""
        calls, self.calls = self.calls, []
        return calls

    def _auth_headers(self) -> dict[str, str]:
        token = self.credentials.get("access_token") or ""
        return {"Authorization": f"Bearer {token}"}

    def _request(
        self,
        method: str,
        endpoint: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
        url: str | None = None,
        token_grant: str | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> requests.Response:
        """Send one request; return the response when 2xx (or in ok_statuses), else raise ProviderError."""
        path = endpoint.format(**{k: quote(str(v), safe="") for k, v in (path_params or {}).items()})
        full_url = url or f"{self.base_url}{path}"
        send_headers = {"Accept": "application/json"}
        if authenticated:
            send_headers.update(self._auth_headers())
        send_headers.update(headers or {})
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}

        if json_body is not None:
            request_text = json.dumps(json_body, default=str)
        elif form is not None:
            request_text = urlencode({k: v for k, v in form.items() if v is not None})
        else:
            request_text = ""
        shown_url = full_url + ("?" + urlencode(clean_params) if clean_params else "")
        call = CallInfo(
            method=method.upper(),
            endpoint=endpoint,
            url=redact_text(shown_url),
            http_status=None,
            duration_ms=0,
            request_excerpt=_excerpt(request_text),
        )
        if self.url_guard is not None and (authenticated or token_grant or form is not None):
            self.url_guard(full_url)
        started = time.monotonic()
        try:
            response = self.session.request(
                method.upper(),
                full_url,
                params=clean_params or None,
                json=json_body,
                data={k: v for k, v in form.items() if v is not None} if form is not None else None,
                headers=send_headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.exceptions.Timeout as e:
            self._record_call(call, started)
            raise ProviderError(
                "timeout", f"{self.provider}: no answer within {self.timeout:g} s", call=call
            ) from e
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
            self._record_call(call, started)
            raise ProviderError(
                "connection", f"{self.provider}: connection failed: {_short(e)}", call=call
            ) from e
        except requests.exceptions.RequestException as e:
            self._record_call(call, started)
            raise ProviderError("unknown", f"{self.provider}: request failed: {_short(e)}", call=call) from e

        call.http_status = response.status_code
        call.rate_limit = self._rate_limit_headers(response)
        call.response_excerpt = _excerpt(response.text or "")
        self._record_call(call, started)
        if 200 <= response.status_code < 300 or response.status_code in ok_statuses:
            return response
        raise self._error_from_response(response, call, token_grant=token_grant)

    def _record_call(self, call: CallInfo, started: float) -> None:
        call.duration_ms = int((time.monotonic() - started) * 1000)
        self.last_call = call
        self.calls.append(call)
        if len(self.calls) > self.max_calls:
            del self.calls[: len(self.calls) - self.max_calls]
        logger.info(
            "%s %s %s -> %s in %d ms",
            self.provider,
            call.method,
            call.url,
            call.http_status if call.http_status is not None else "no response",
            call.duration_ms,
            extra={"provider": self.provider, "endpoint": call.endpoint, "http_status": call.http_status},
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s request: %s | response: %s", self.provider, call.request_excerpt, call.response_excerpt
            )

    def _rate_limit_headers(self, response: requests.Response) -> dict[str, str]:
        prefixes = self.rate_limit_header_prefixes
        return {k: v for k, v in response.headers.items() if k.lower().startswith(prefixes)}

    def _json(self, response: requests.Response, *, what: str = "response") -> Any:
        """The response body as JSON, or ProviderError(unknown) naming what was wrong."""
        try:
            return response.json()
        except ValueError as e:
            ctype = response.headers.get("Content-Type", "?")
            snippet = redact_text((response.text or "")[:120])
            raise ProviderError(
                "unknown",
                f"{self.provider}: malformed {what}: not JSON (HTTP {response.status_code}, {ctype}): {snippet!r}",
                http_status=response.status_code,
                call=self.last_call,
            ) from e

    def _json_object(self, response: requests.Response, *, what: str = "response") -> dict:
        data = self._json(response, what=what)
        if not isinstance(data, dict):
            raise self._malformed(f"{what} is a {type(data).__name__}, expected an object", response)
        return data

    def _malformed(self, message: str, response: requests.Response | None = None) -> ProviderError:
        return ProviderError(
            "unknown",
            f"{self.provider}: malformed response: {message}",
            http_status=response.status_code if response is not None else None,
            call=self.last_call,
        )

    # ------------------------------------------------------------------------------------- error mapping

    def _error_from_response(
        self, response: requests.Response, call: CallInfo, *, token_grant: str | None = None
    ) -> ProviderError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        items = _error_items(body)
        codes = {str(item[k]).upper() for item in items for k in _CODE_KEYS if isinstance(item.get(k), str)}
        message = _error_message(items)
        if not message and body is None and (response.text or "").strip() and len(response.text) < 300:
            message = response.text.strip()
        message = redact_text(message or response.reason or f"HTTP {status}")
        retry_after = self._retry_after(response)
        kw: dict[str, Any] = {"http_status": status, "call": call}
        prefix = f"{self.provider}: "

        if status == 429 or codes & _RATE_CODES:
            return ProviderError("rate_limited", prefix + message, retry_after=retry_after, **kw)
        if status >= 500:
            return ProviderError("provider_5xx", prefix + message, retry_after=retry_after, **kw)
        if token_grant is not None and 400 <= status < 500:
            if codes & _CLIENT_CODES:
                return ProviderError("auth_invalid", prefix + "app credentials refused: " + message, **kw)
            if token_grant == "refresh_token":
                return ProviderError("auth_refresh_failed", prefix + message, **kw)
            return ProviderError("auth_invalid", prefix + "authorization code refused: " + message, **kw)
        if codes & _EXPIRED_CODES:
            return ProviderError("auth_expired", prefix + message, **kw)
        if codes & _REFRESH_CODES:
            return ProviderError("auth_refresh_failed", prefix + message, **kw)
        if status == 401:
            # A bearer token that no longer works may be refreshed; a refused API key needs a person.
            category = "auth_expired" if self.auth_type == "oauth2" else "auth_invalid"
            return ProviderError(category, prefix + message, **kw)
        if status == 403:
            return ProviderError("auth_invalid", prefix + "forbidden: " + message, **kw)
        field_name = self._error_field(body, items, message)
        if (
            status == 409
            or codes & _DUPLICATE_CODES
            or (status in (400, 422) and _DUPLICATE_RE.search(message))
        ):
            return ProviderError(
                "duplicate", prefix + message, field=field_name, existing_id=_existing_id(body, message), **kw
            )
        if status == 404:
            return ProviderError("unknown", prefix + "not found: " + message, **kw)
        if 400 <= status < 500:
            missing = bool(codes & _MISSING_CODES) or bool(_MISSING_RE.search(message))
            return ProviderError(
                "missing_field" if missing else "validation", prefix + message, field=field_name, **kw
            )
        return ProviderError("unknown", prefix + f"unexpected HTTP {status}: " + message, **kw)

    def _retry_after(self, response: requests.Response) -> float | None:
        return parse_retry_after(response.headers.get("Retry-After"), cap=self.retry_after_cap)

    def _error_field(self, body: Any, items: list[dict], message: str) -> str | None:
        """The flat field an error body names, if any."""
        for item in items:
            candidate = _field_in_item(item)
            if candidate:
                return self._flat_field_name(candidate)
        if isinstance(body, dict) and isinstance(body.get("detail"), dict) and body["detail"]:
            return self._flat_field_name(str(next(iter(body["detail"]))))
        return self._field_in_message(message)

    def _flat_field_name(self, name: str) -> str:
        base = re.split(r"[\[.]", name, maxsplit=1)[0] or name
        return self.field_aliases.get(name) or self.field_aliases.get(base) or base

    def _field_in_message(self, message: str) -> str | None:
        names = list(self.known_fields) + list(self.field_aliases)
        for name in sorted(names, key=len, reverse=True):
            if re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message, re.IGNORECASE):
                return self._flat_field_name(name)
        return None

    # ------------------------------------------------------------------------------------- OAuth

    def _token_request(self, form: dict[str, Any], *, grant: str) -> TokenSet:
        if self.auth_type != "oauth2":
            raise UnsupportedOperation(
                f"{self.provider} uses API keys: there is no token to refresh", category="auth_invalid"
            )
        response = self._request(
            "POST", self.token_endpoint, form=form, authenticated=False, token_grant=grant
        )
        data = self._json_object(response, what="token response")
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise self._malformed("token response has no access_token", response)
        expires_in = data.get("expires_in")
        try:
            expires = int(expires_in) if expires_in is not None else None
        except (TypeError, ValueError):
            expires = None
        refresh = data.get("refresh_token") or (
            form.get("refresh_token") if grant == "refresh_token" else None
        )
        known = {"access_token", "refresh_token", "expires_in"}
        extra = {k: v for k, v in data.items() if k not in known and k not in ("token_type",)}
        tokens = TokenSet(access_token=access, refresh_token=refresh, expires_in=expires, extra=extra)
        # Later calls on this client use the new tokens; the caller persists them.
        self.credentials["access_token"] = tokens.access_token
        if tokens.refresh_token:
            self.credentials["refresh_token"] = tokens.refresh_token
        return tokens

    def refresh_token(self) -> TokenSet:
        """Trade the refresh token for a new access token (oauth2 providers)."""
        if self.auth_type != "oauth2":
            raise UnsupportedOperation(
                f"{self.provider} uses API keys: there is no token to refresh", category="auth_invalid"
            )
        refresh = self.credentials.get("refresh_token")
        if not refresh:
            raise ProviderError("auth_refresh_failed", f"{self.provider}: no refresh token stored")
        return self._token_request(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
            grant="refresh_token",
        )

    def exchange_code(self, *, code: str, redirect_uri: str) -> TokenSet:
        """Trade an authorization code from the consent redirect for tokens."""
        return self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
            grant="authorization_code",
        )

    def account_of(self, tokens: TokenSet) -> str | None:
        """The provider account (portal, org, ...) a token set belongs to, or None when the provider does not
        say. Issue 13: an integration is bound to the account of its first grant."""
        return None

    def authorize_url(self, *, redirect_uri: str, state: str, account: str | None = None) -> str:
        """The consent page URL to send an operator to (oauth2 providers)."""
        if self.auth_type != "oauth2":
            raise UnsupportedOperation(
                f"{self.provider} uses API keys: there is no consent page", category="auth_invalid"
            )
        query = {
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "state": state,
        }
        if self.default_scopes:
            query["scope"] = " ".join(self.default_scopes)
        if account:
            query["account"] = account
        return f"{self.base_url}{self.authorize_endpoint}?{urlencode(query)}"

    # ------------------------------------------------------------------------------------- operations

    def _unsupported(self, operation: str) -> UnsupportedOperation:
        return UnsupportedOperation(f"{self.provider} does not support {operation}")

    def list_records(
        self, *, updated_since: datetime | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        raise self._unsupported("list_records")

    def get_record(self, remote_id: str) -> RemoteRecord:
        raise self._unsupported("get_record")

    def create_record(self, fields: dict) -> RemoteRecord:
        raise self._unsupported("create_record")

    def update_record(self, remote_id: str, fields: dict) -> RemoteRecord:
        raise self._unsupported("update_record")

    def create_records(self, items: list[dict]) -> list[RemoteRecord | ProviderError]:
        """Create many in one call: per input, the created record or the error of that input alone."""
        raise self._unsupported("create_records")

    def update_records(self, items: list[tuple[str, dict]]) -> list[RemoteRecord | ProviderError]:
        """Update many (remote id, fields) in one call: per input, the record or that input's error."""
        raise self._unsupported("update_records")

    def _item_error(self, item: dict, call: CallInfo | None) -> ProviderError:
        """One failed input of a batch answer, in the one taxonomy (the whole call succeeded)."""
        items = _error_items(item)
        codes = {str(i[k]).upper() for i in items for k in _CODE_KEYS if isinstance(i.get(k), str)}
        codes |= {str(i.get("statusCode", "")).upper() for i in items}
        message = redact_text(_error_message(items) or "rejected in a batch")
        field_name = self._error_field(item, items, message)
        prefix = f"{self.provider}: "
        kw: dict[str, Any] = {"call": call, "field": field_name}
        if codes & _DUPLICATE_CODES or _DUPLICATE_RE.search(message):
            return ProviderError("duplicate", prefix + message, existing_id=_existing_id(item, message), **kw)
        if codes & _MISSING_CODES or _MISSING_RE.search(message):
            return ProviderError("missing_field", prefix + message, **kw)
        if codes & {"OBJECT_NOT_FOUND", "ENTITY_IS_DELETED", "NOT_FOUND"}:
            return ProviderError("unknown", prefix + "not found: " + message, **kw)
        return ProviderError("validation", prefix + message, **kw)

    def find_person(self, email: str) -> RemoteRecord | None:
        raise self._unsupported("find_person")

    def find_by_external_id(self, external_id: str) -> RemoteRecord | None:
        """The provider's record that carries our lineup_id, or None (see finds_by_external_id)."""
        raise self._unsupported("find_by_external_id")

    def check_credentials(self) -> None:
        self.list_records(limit=1)

    def status(self) -> ProviderStatus:
        """Atlassian Statuspage's status.json below the provider's base URL."""
        response = self._request("GET", "/api/v2/status.json", authenticated=False)
        data = self._json_object(response, what="status page")
        status = data.get("status")
        if not isinstance(status, dict) or "indicator" not in status:
            raise self._malformed("status page has no status.indicator", response)
        indicator = str(status.get("indicator") or "none").lower()
        if indicator not in ("none", "minor", "major", "critical"):
            indicator = "minor"
        return ProviderStatus(indicator=indicator, description=str(status.get("description") or ""), raw=data)

    # ------------------------------------------------------------------------------------- webhooks

    @classmethod
    def verify_webhook(
        cls,
        *,
        secret: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime | None = None,
    ) -> bool:
        return False

    @classmethod
    def parse_webhook(cls, *, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        raise ProviderError("validation", f"{cls.provider} sends no webhooks")

    @classmethod
    def sign_webhook(
        cls, *, secret: str, method: str = "POST", url: str, body: bytes, now: datetime | None = None
    ) -> tuple[str, dict[str, str], bytes]:
        """(url, headers, body) as the provider would deliver them; the inverse of verify_webhook."""
        raise UnsupportedOperation(f"{cls.provider} sends no webhooks")

    # ------------------------------------------------------------------------------------- helpers

    def _require_id(self, data: Any, response: requests.Response, *keys: str) -> str:
        if isinstance(data, dict):
            for key in keys or ("id",):
                value = data.get(key)
                if value not in (None, ""):
                    return str(value)
        raise self._malformed(f"record has no {'/'.join(keys or ('id',))}", response)


def _short(exc: BaseException) -> str:
    return redact_text(str(exc))[:300]


def _error_items(body: Any) -> list[dict]:
    """The dicts of an error body: Salesforce's list, an envelope and its errors[]."""
    if isinstance(body, list):
        return [item for item in body if isinstance(item, dict)]
    if isinstance(body, dict):
        items = [body]
        errors = body.get("errors")
        if isinstance(errors, list):
            items.extend(item for item in errors if isinstance(item, dict))
        return items
    return []


def _error_message(items: list[dict]) -> str:
    parts: list[str] = []
    for item in items:
        for key in _MESSAGE_KEYS:
            value = item.get(key)
            if isinstance(value, str) and value and value not in parts:
                # A bare code like "invalid_grant" says less than its description; keep both anyway.
                parts.append(value)
                break
        detail = item.get("detail")
        if isinstance(detail, dict):
            for name, msgs in detail.items():
                text = "; ".join(str(m) for m in msgs) if isinstance(msgs, list) else str(msgs)
                parts.append(f"{name}: {text}")
    return "; ".join(parts)


def _field_in_item(item: dict) -> str | None:
    value = item.get("field")
    if isinstance(value, str) and value:
        return value
    fields = item.get("fields")
    if isinstance(fields, list) and fields and isinstance(fields[0], str):
        return fields[0]
    context = item.get("context")
    if isinstance(context, dict):
        names = context.get("propertyName") or context.get("properties")
        if isinstance(names, list) and names:
            return str(names[0])
        if isinstance(names, str) and names:
            return names
    name = item.get("propertyName")
    if isinstance(name, str) and name:
        return name
    return None


def _existing_id(body: Any, message: str) -> str | None:
    found = _find_key(body, _EXISTING_ID_KEYS)
    if found:
        return found
    # Salesforce: duplicateResult.matchResults[].matchRecords[].record.Id
    match_records = _find_key(body, ("matchRecords",), want_any=True)
    if isinstance(match_records, list):
        for entry in match_records:
            record = entry.get("record") if isinstance(entry, dict) else None
            if isinstance(record, dict) and (record.get("Id") or record.get("id")):
                return str(record.get("Id") or record.get("id"))
    m = _EXISTING_ID_RE.search(message or "")
    return m.group(1) if m else None


def _find_key(data: Any, keys: tuple[str, ...], *, want_any: bool = False, depth: int = 0) -> Any:
    if depth > 6:
        return None
    if isinstance(data, dict):
        for key in keys:
            value = data.get(key)
            if value not in (None, "", []):
                return value if want_any else str(value)
        children = list(data.values())
    elif isinstance(data, list):
        children = data
    else:
        return None
    for child in children:
        found = _find_key(child, keys, want_any=want_any, depth=depth + 1)
        if found is not None:
            return found
    return None
