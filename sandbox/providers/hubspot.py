"""HubSpot: CRM contacts over OAuth2 (token endpoint /oauth/v1/token), v3-signed webhooks.

See docs/provider-contract.md for the shapes; facts (quota, token lifetime) in sandbox/facts.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
import zlib
from urllib.parse import urlencode

from sandbox.providers.base import Builder, OAuthProvider, blank, rng
from sandbox.state import Record, Subscription, iso_ms, now_ms, parse_time
from sandbox.wire import Request, json_response

HUBSPOT_APP_ID = 1160452


def hubspot_signature_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    """X-HubSpot-Signature-v3: base64(HMAC-SHA256(app secret, method + URI + body + timestamp))."""
    message = method.encode() + url.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def portal_id(account: str) -> int:
    """HubSpot portal id of an account: stable, derived from the account name."""
    return 10_000_000 + zlib.crc32(account.encode()) % 90_000_000


class HubSpot(OAuthProvider):
    slug = "hubspot"
    token_path = "/oauth/v1/token"
    authorize_path = "/oauth/authorize"
    token_prefix = "CO"
    retry_after = "none"
    allowed_fields = frozenset(
        {
            "email",
            "firstname",
            "lastname",
            "company",
            "jobtitle",
            "phone",
            "website",
            "lifecyclestage",
            "city",
            "country",
            "lineup_id",
        }
    )
    unknown_field_code = "PROPERTY_DOESNT_EXIST"
    READ_ONLY = frozenset({"createdate", "lastmodifieddate", "hs_object_id"})
    routes_spec = [
        ("POST", r"/crm/v3/objects/contacts", "h_create", "api"),
        ("GET", r"/crm/v3/objects/contacts", "h_list", "api"),
        ("POST", r"/crm/v3/objects/contacts/search", "h_search", "api"),
        ("POST", r"/crm/v3/objects/contacts/batch/create", "h_batch_create", "api"),
        ("POST", r"/crm/v3/objects/contacts/batch/update", "h_batch_update", "api"),
        ("GET", r"/crm/v3/objects/contacts/(?P<id>[^/]+)", "h_get", "api"),
        ("PATCH", r"/crm/v3/objects/contacts/(?P<id>[^/]+)", "h_update", "api"),
        # OAuth access-token metadata (HubSpot's real shape): which portal (hub_id) a token belongs to.
        ("GET", r"/oauth/v1/access-tokens/(?P<token>[^/]+)", "h_access_token_info", "oauth"),
    ]

    def h_access_token_info(self, pstate, req):
        token = req.params["token"]
        entry = pstate.access_tokens.get(token)
        if entry is None or entry.expires_ms < now_ms():
            return json_response(
                404,
                {
                    "status": "error",
                    "message": "The OAuth token used to make this call expired.",
                    "category": "EXPIRED_AUTHENTICATION",
                },
            )
        req.account = entry.account
        return json_response(
            200,
            {
                "token": token,
                "user": f"admin@{entry.account}.example",
                "hub_domain": f"{entry.account}.hubspot.example",
                "scopes": ["crm.objects.contacts.read", "crm.objects.contacts.write", "oauth"],
                "hub_id": portal_id(entry.account),
                "app_id": HUBSPOT_APP_ID,
                "expires_in": max(0, (entry.expires_ms - now_ms()) // 1000),
                "user_id": 5000000 + portal_id(entry.account) % 1000,
                "token_type": "access",
            },
        )

    def token_error(self, kind, message):
        status = {
            "invalid_request": "BAD_REQUEST",
            "unsupported_grant_type": "BAD_GRANT_TYPE",
            "invalid_client": "BAD_CLIENT_ID",
            "bad_code": "BAD_AUTH_CODE",
            "redirect_mismatch": "BAD_REDIRECT_URI",
            "bad_refresh": "BAD_REFRESH_TOKEN",
        }[kind]
        if kind == "bad_refresh":
            message = "missing or invalid refresh token"
        return json_response(400, {"status": status, "message": message, "correlationId": str(uuid.uuid4())})

    def rate_headers(self, info):
        return {
            "X-HubSpot-RateLimit-Max": str(info.limit),
            "X-HubSpot-RateLimit-Remaining": str(info.remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(info.window * 1000),
        }

    def expired_message(self, ago):
        return f"The OAuth token used to make this call expired {ago} second(s) ago."

    def missing_credentials_message(self):
        return (
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
            "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
        )

    def unknown_field_message(self, name):
        return f'Property "{name}" does not exist'

    def error_body(self, kind, message, *, field=None, existing_id=None, code=None):
        cid = str(uuid.uuid4())
        if kind == "rate_limited":
            return {
                "status": "error",
                "message": "You have reached your secondly limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": cid,
                "policyName": "TEN_SECONDLY_ROLLING",
            }
        category = {
            "auth_invalid": "INVALID_AUTHENTICATION",
            "auth_expired": "EXPIRED_AUTHENTICATION",
            "forbidden": "MISSING_SCOPES",
            "validation": "VALIDATION_ERROR",
            "missing_field": "VALIDATION_ERROR",
            "duplicate": "CONFLICT",
            "unavailable": "SERVICE_UNAVAILABLE",
            "not_found": "OBJECT_NOT_FOUND",
            "bad_request": "VALIDATION_ERROR",
            "method_not_allowed": "METHOD_NOT_ALLOWED",
        }[kind]
        if kind == "duplicate":
            message = f"Contact already exists. Existing ID: {existing_id}"
        body = {"status": "error", "message": message, "correlationId": cid, "category": category}
        if kind in ("validation", "missing_field") and field:
            err_code = code or ("REQUIRED_FIELD" if kind == "missing_field" else "INVALID_VALUE")
            detail = f'Property "{field}" is required' if kind == "missing_field" else message
            body["message"] = "Property values were not valid: " + json.dumps(
                [{"isValid": False, "message": detail, "error": err_code, "name": field}]
            )
            body["errors"] = [{"message": detail, "code": err_code, "context": {"propertyName": [field]}}]
        return body

    def new_id(self, pstate):
        return str(rng.randint(10_000_000_000, 99_999_999_999))

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
        props.update(
            {
                "createdate": iso_ms(rec.created_ms),
                "lastmodifieddate": iso_ms(rec.updated_ms),
                "hs_object_id": rec.id,
            }
        )
        return {
            "id": rec.id,
            "properties": props,
            "createdAt": iso_ms(rec.created_ms),
            "updatedAt": iso_ms(rec.updated_ms),
            "archived": False,
        }

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
            link = f"{req.base_url}/{self.slug}/crm/v3/objects/contacts?" + urlencode(
                {"limit": limit, "after": nxt}
            )
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
            return not blank(actual)
        if op == "NOT_HAS_PROPERTY":
            return blank(actual)
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
        ops = {
            "EQ": actual == value,
            "NEQ": actual != value,
            "GT": actual > value,
            "GTE": actual >= value,
            "LT": actual < value,
            "LTE": actual <= value,
            "CONTAINS_TOKEN": str(value).strip("*") in str(actual),
        }
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
            records = [
                r
                for r in records
                if any(all(self._filter_ok(r, f) for f in (g or {}).get("filters", [])) for g in groups)
            ]
        sorts = body.get("sorts") or []
        for sort in reversed(sorts):
            name = sort if isinstance(sort, str) else (sort or {}).get("propertyName")
            direction = (
                "ASCENDING" if isinstance(sort, str) else str((sort or {}).get("direction", "ASCENDING"))
            )
            if name:
                records.sort(
                    key=lambda r, n=name: (
                        self._prop(r, n) is None,
                        str(self._prop(r, n) or "")
                        if n not in ("lastmodifieddate", "createdate")
                        else self._prop(r, n),
                    ),
                    reverse=direction.upper().startswith("DESC"),
                )
        page = records[after : after + limit]
        props = body.get("properties")
        fake = req
        if isinstance(props, list) and props:
            fake = Request(
                req.method,
                req.path,
                req.full_path,
                {"properties": [",".join(props)]},
                req.headers,
                b"",
                req.base_url,
                req.account,
            )
        out = {"total": len(records), "results": [self.render(r, fake) for r in page]}
        if after + limit < len(records):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return json_response(200, out)

    # ------------------------------------------------------------------ batch
    BATCH_MAX = 100

    def _batch_inputs(self, req):
        body = self.read_json_object(req)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            self.fail("bad_request", "Invalid input JSON: 'inputs' must be a non-empty list")
        if len(inputs) > self.BATCH_MAX:
            self.fail("bad_request", f"Batch size must be at most {self.BATCH_MAX}, got {len(inputs)}")
        return inputs

    def _batch_answer(self, started, results, errors, ok_status):
        """201 (create) / 200 (update) COMPLETE, or 207 with errors[] per failed input (multi-status)."""
        body = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso_ms(started),
            "completedAt": iso_ms(now_ms()),
        }
        if errors:
            body["errors"] = errors
            body["numErrors"] = len(errors)
            return json_response(207, body)
        return json_response(ok_status, body)

    def _item_error(self, error_body, context):
        return {
            "status": "error",
            "category": error_body.get("category", "VALIDATION_ERROR"),
            "message": error_body.get("message", ""),
            "context": {**((error_body.get("errors") or [{}])[0].get("context") or {}), **context},
            "errors": error_body.get("errors") or [],
        }

    def h_batch_create(self, pstate, req):
        started, results, errors = now_ms(), [], []
        for item in self._batch_inputs(req):
            fields = self.parse_write(req, item if isinstance(item, dict) else {})
            rec, error = self.write_item(pstate, req.account, fields, None)
            if error is not None:
                errors.append(self._item_error(error, {"lineup_id": [fields.get("lineup_id")]}))
            else:
                results.append(self.render(rec, req))
        return self._batch_answer(started, results, errors, 201)

    def h_batch_update(self, pstate, req):
        started, results, errors = now_ms(), [], []
        for item in self._batch_inputs(req):
            record_id = str((item or {}).get("id") or "")
            rec = pstate.get_record(req.account, record_id)
            if rec is None:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": "Object not found.  objectId are usually numeric.",
                        "context": {"ids": [record_id]},
                    }
                )
                continue
            fields = self.parse_write(req, item)
            rec, error = self.write_item(pstate, req.account, fields, rec)
            if error is not None:
                errors.append(self._item_error(error, {"ids": [record_id]}))
            else:
                results.append(self.render(rec, req))
        return self._batch_answer(started, results, errors, 200)

    # ------------------------------------------------------------------ webhooks
    def webhook_deliveries(
        self, sub: Subscription, rec: Record, created: bool, changed: dict
    ) -> list[tuple[str, Builder]]:
        """One batch per change: contact.creation, or one contact.propertyChange per changed property."""
        base = {
            "subscriptionId": sub.id,
            "portalId": portal_id(rec.account),
            "appId": HUBSPOT_APP_ID,
            "occurredAt": now_ms(),
            "objectId": int(rec.id),
            "changeSource": "CRM_UI",
            "changeFlag": "NEW" if created else "UPDATED",
            "sourceId": "userId:1",
        }
        if created:
            events = [{**base, "eventId": secrets.randbelow(10**9), "subscriptionType": "contact.creation"}]
        else:
            events = [
                {
                    **base,
                    "eventId": secrets.randbelow(10**9),
                    "subscriptionType": "contact.propertyChange",
                    "propertyName": name,
                    "propertyValue": "" if value is None else str(value),
                }
                for name, value in changed.items()
            ]
        if not events:
            return []

        def build(attempt: int) -> tuple[str, dict[str, str], bytes]:
            body = json.dumps([{**e, "attemptNumber": attempt - 1} for e in events]).encode()
            timestamp = str(now_ms())
            return (
                sub.url,
                {
                    "Content-Type": "application/json",
                    "X-HubSpot-Request-Timestamp": timestamp,
                    "X-HubSpot-Signature-v3": hubspot_signature_v3(
                        sub.secret, "POST", sub.url, body, timestamp
                    ),
                    "X-HubSpot-Signature-Version": "v3",
                },
                body,
            )

        return [(str(events[0]["eventId"]), build)]
