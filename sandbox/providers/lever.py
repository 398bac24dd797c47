"""Lever: opportunities over OAuth2, offset-token paging, webhooks signed in the body.

See docs/provider-contract.md for the shapes; facts (quota, token lifetime) in sandbox/facts.py.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import uuid

from sandbox.providers.base import Builder, OAuthProvider, hmac_hex
from sandbox.state import Record, Subscription, now_ms
from sandbox.wire import json_response


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
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "scope": "opportunities:write:admin offline_access",
            "expires_in": ttl,
        }

    def expired_message(self, ago):
        return "Expired access token"

    def error_body(self, kind, message, *, field=None, existing_id=None, code=None):
        lever_code = {
            "auth_invalid": "Unauthorized",
            "auth_expired": "Unauthorized",
            "forbidden": "Forbidden",
            "rate_limited": "TooManyRequests",
            "validation": "BadRequestError",
            "missing_field": "BadRequestError",
            "duplicate": "ConflictError",
            "unavailable": "ServiceUnavailable",
            "not_found": "ResourceNotFound",
            "bad_request": "BadRequestError",
            "method_not_allowed": "MethodNotAllowed",
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
            lineup = [t[len("lineup:") :] for t in tags if isinstance(t, str) and t.startswith("lineup:")]
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
            "id": rec.id,
            "name": f.get("name"),
            "headline": f.get("headline"),
            "contact": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lever-contact:{rec.id}")),
            "emails": [f["email"]] if f.get("email") else [],
            "phones": [],
            "links": [],
            "location": None,
            "tags": [f"lineup:{f['lineup_id']}"] if f.get("lineup_id") else [],
            "stage": "lead-new",
            "confidentiality": "non-confidential",
            "origin": "sourced",
            "sources": [],
            "owner": None,
            "followers": [],
            "applications": [],
            "archived": None,
            "createdAt": rec.created_ms,
            "updatedAt": rec.updated_ms,
            "lastInteractionAt": rec.updated_ms,
            "lastAdvancedAt": rec.created_ms,
            "snoozedUntil": None,
            "isAnonymized": False,
            "dataProtection": None,
            "urls": {
                "list": f"{base}/{self.slug}/v1/opportunities",
                "show": f"{base}/{self.slug}/v1/opportunities/{rec.id}",
            },
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
            r
            for r in pstate.account_records(req.account)
            if r.seq >= after
            and (start is None or r.updated_ms >= start)
            and (end is None or r.updated_ms <= end)
            and (created_start is None or r.created_ms >= created_start)
            and (email is None or str(r.fields.get("email", "")).lower() == email.lower())
        ]
        page, rest = records[:limit], records[limit:]
        body = {"data": [self.render(r, req) for r in page], "hasNext": bool(rest)}
        if rest:
            body["next"] = base64.urlsafe_b64encode(str(rest[0].seq).encode()).decode().rstrip("=")
        return json_response(200, body)

    # ------------------------------------------------------------------ webhooks
    def webhook_deliveries(
        self, sub: Subscription, rec: Record, created: bool, changed: dict
    ) -> list[tuple[str, Builder]]:
        """The signature travels in the body: hex HMAC-SHA256(signature token, token + triggeredAt)."""
        event_id = str(uuid.uuid4())
        triggered = now_ms()
        token = secrets.token_hex(16)
        payload = {
            "id": event_id,
            "triggeredAt": triggered,
            "event": "candidateCreated" if created else "candidateUpdated",
            "token": token,
            "signature": hmac_hex(sub.secret, (token + str(triggered)).encode()),
            "data": {
                "opportunityId": rec.id,
                "candidateId": rec.id,
                "contactId": self.render(rec)["contact"],
            },
        }
        body = json.dumps(payload).encode()
        return [(event_id, lambda attempt: (sub.url, {"Content-Type": "application/json"}, body))]
