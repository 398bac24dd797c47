"""The control API (`/_control/...`): switch a provider's behaviour, seed credentials and records, read stats.

JSON in and out, never needs provider credentials. See docs/provider-contract.md, "Sandbox basics".
"""

from __future__ import annotations

import re
from typing import Protocol

from sandbox.facts import WEBHOOK_PROVIDERS
from sandbox.providers.base import Provider
from sandbox.state import MODES, ProviderState, SandboxState, Subscription, now_ms
from sandbox.webhooks import WebhookSender
from sandbox.wire import BadJson, Request, Response, json_response


class Sandbox(Protocol):
    """What the control API needs of the server (sandbox.server.SandboxServer), without importing it back."""

    state: SandboxState
    providers: dict[str, Provider]
    webhooks: WebhookSender


CONTROL_KEYS = {
    "mode",
    "delay",
    "error_rate",
    "rate_limit",
    "window",
    "expire_tokens",
    "revoke_refresh_tokens",
    "token_ttl",
    "reject",
}


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


def _body(req: Request) -> dict:
    try:
        data = req.json()
    except BadJson as exc:
        raise ControlError(400, str(exc)) from None
    if not isinstance(data, dict):
        raise ControlError(400, "expected a JSON object")
    return data


def _number(
    body: dict,
    key: str,
    *,
    integer: bool = False,
    low: float = 0,
    high: float | None = None,
    positive: bool = False,
):
    value = body[key]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not isinstance(value, int))
    ):
        raise ControlError(400, f"{key} must be {'an integer' if integer else 'a number'}")
    if value < low or (positive and value <= 0) or (high is not None and value > high):
        raise ControlError(400, f"{key} is out of range: {value}")
    return value


def apply_changes(pstate: ProviderState, body: dict) -> None:
    """Validate every change first, then apply them all (a bad body changes nothing)."""
    unknown = sorted(set(body) - CONTROL_KEYS)
    if unknown:
        raise ControlError(
            400, f"unknown control keys: {', '.join(unknown)} (known: {', '.join(sorted(CONTROL_KEYS))})"
        )
    if "mode" in body and body["mode"] not in MODES:
        raise ControlError(400, f"mode must be one of {', '.join(MODES)}")
    if "delay" in body:
        _number(body, "delay")
    if "error_rate" in body:
        _number(body, "error_rate", high=1)
    if body.get("rate_limit") is not None:
        _number(body, "rate_limit", integer=True)
    if body.get("window") is not None:
        _number(body, "window", integer=True, positive=True)
    if body.get("token_ttl") is not None:
        _number(body, "token_ttl", integer=True, positive=True)
    for flag in ("expire_tokens", "revoke_refresh_tokens"):
        if flag in body and not isinstance(body[flag], bool):
            raise ControlError(400, f"{flag} must be true or false")
    reject = body.get("reject")
    if reject is not None:
        if not isinstance(reject, dict) or not isinstance(reject.get("field"), str) or not reject["field"]:
            raise ControlError(400, 'reject must be null or {"field": "...", "contains": "..."}')
        if set(reject) - {"field", "contains"}:
            raise ControlError(400, "reject accepts only field and contains")
        if reject.get("contains") is not None and not isinstance(reject["contains"], str):
            raise ControlError(400, "reject.contains must be a string")

    if "mode" in body and body["mode"] != pstate.mode:
        pstate.mode = body["mode"]
        pstate.mode_since_ms = now_ms()
    if "delay" in body:
        pstate.delay = float(body["delay"])
    if "error_rate" in body:
        pstate.error_rate = float(body["error_rate"])
    if "rate_limit" in body:
        pstate.rate_limit = body["rate_limit"]
        if body["rate_limit"] is None and "window" not in body:
            pstate.window = None
        pstate.restart_window()
    if "window" in body:
        pstate.window = body["window"]
        pstate.restart_window()
    if "token_ttl" in body:
        pstate.token_ttl = body["token_ttl"]
    if "reject" in body:
        pstate.reject = (
            None if reject is None else {"field": reject["field"], "contains": reject.get("contains")}
        )
    if body.get("expire_tokens"):
        pstate.expire_tokens()
    if body.get("revoke_refresh_tokens"):
        pstate.revoke_refresh_tokens()


def _account(body_or_query: dict, required: bool = True) -> str | None:
    account = body_or_query.get("account")
    if isinstance(account, list):
        account = account[0] if account else None
    if account is None and not required:
        return None
    if not isinstance(account, str) or not account.strip():
        raise ControlError(400, "account (a non-empty string) is required")
    return account.strip()


def _fields(body: dict) -> dict:
    fields = body.get("fields")
    if not isinstance(fields, dict):
        raise ControlError(400, "fields must be a JSON object")
    return fields


def handle(server: Sandbox, req: Request) -> Response:
    try:
        return _route(server, req)
    except ControlError as exc:
        return _error(exc.status, exc.message)


_PATH = re.compile(
    r"^/_control/(?P<slug>[^/]+)(?:/(?P<what>requests|credentials|records|webhooks)"
    r"(?:/(?P<id>[^/]+))?)?/?$"
)


def _route(server: Sandbox, req: Request) -> Response:
    state = server.state
    path, method = req.path, req.method
    if path.rstrip("/") == "/_control/health":
        return json_response(200, {"ok": True, "providers": sorted(state.providers)})
    if path.rstrip("/") == "/_control/reset":
        if method != "POST":
            raise ControlError(405, "use POST")
        state.reset()
        return json_response(200, {"ok": True})
    found = _PATH.match(path)
    if not found:
        raise ControlError(404, f"unknown control path {path}")
    slug, what, record_id = found["slug"], found["what"], found["id"]
    if slug not in state.providers:
        raise ControlError(404, f"unknown provider {slug!r} (known: {', '.join(sorted(state.providers))})")
    provider = server.providers[slug]
    with state.lock:
        pstate = state.provider(slug)
        if what is None:
            if method == "POST":
                apply_changes(pstate, _body(req))
            elif method != "GET":
                raise ControlError(405, "use GET or POST")
            return json_response(200, pstate.control_view())

        if what == "requests":
            if method != "GET":
                raise ControlError(405, "use GET")
            account = _account(req.query, required=False)
            try:
                limit = int(req.q("limit") or 100)
            except ValueError:
                raise ControlError(400, "limit must be an integer") from None
            entries = [e for e in pstate.requests if account is None or e["account"] == account]
            return json_response(200, {"requests": entries[-limit:] if limit > 0 else []})

        if what == "credentials":
            if method != "POST":
                raise ControlError(405, "use POST")
            account = _account(_body(req))
            return json_response(200, provider.credentials(pstate, account, req.base_url))

        if what == "records":
            if record_id is None:
                if method == "GET":
                    account = _account(req.query, required=False)
                    records = pstate.account_records(account) if account else pstate.all_records()
                    return json_response(200, {"records": [r.control_view() for r in records]})
                if method == "POST":
                    body = _body(req)
                    account, fields = _account(body), _fields(body)
                    rec = pstate.add_record(
                        account, provider.unique_id(pstate), {**provider.create_defaults(), **fields}
                    )
                    server.webhooks.record_changed(pstate, rec, created=True, changed=dict(rec.fields))
                    return json_response(201, rec.control_view())
                raise ControlError(405, "use GET or POST")
            rec = pstate.get_record(None, record_id)
            if rec is None:
                raise ControlError(404, f"no {slug} record {record_id}")
            if method == "GET":
                return json_response(200, rec.control_view())
            if method == "PATCH":
                changed = pstate.update_record(rec, _fields(_body(req)))
                server.webhooks.record_changed(pstate, rec, created=False, changed=changed)
                return json_response(200, rec.control_view())
            if method == "DELETE":
                pstate.delete_record(rec)
                return json_response(200, {"deleted": rec.id})
            raise ControlError(405, "use GET, PATCH or DELETE")

        # webhooks
        if method == "GET":
            return json_response(
                200,
                {
                    "subscriptions": [
                        {"id": s.id, "account": s.account, "url": s.url} for s in pstate.subscriptions
                    ],
                    "deliveries": list(pstate.deliveries),
                },
            )
        if method == "DELETE":
            pstate.subscriptions.clear()
            return json_response(200, {"subscriptions": []})
        if method != "POST":
            raise ControlError(405, "use GET, POST or DELETE")
        if slug not in WEBHOOK_PROVIDERS:
            raise ControlError(400, f"{slug} sends no webhooks (polling only)")
        body = _body(req)
        account = _account(body)
        url, secret = body.get("url"), body.get("secret")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ControlError(400, "url (http or https) is required")
        if not isinstance(secret, str) or not secret:
            raise ControlError(400, "secret (a non-empty string) is required")
        sub = Subscription(len(pstate.subscriptions) + 1, account, url, secret)
        pstate.subscriptions.append(sub)
        return json_response(201, {"id": sub.id, "account": account, "url": url})
