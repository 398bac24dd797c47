"""PandaDoc: documents over an API-Key header; webhooks signed by a query parameter.

See docs/provider-contract.md for the shapes; facts (quota, token lifetime) in sandbox/facts.py.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from urllib.parse import urlsplit

from sandbox.providers.base import Builder, Provider, hmac_hex, random_chars
from sandbox.state import Record, Subscription, iso_ms
from sandbox.wire import json_response


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
        kind_type = {
            "auth_invalid": "authorization_error",
            "auth_expired": "authorization_error",
            "forbidden": "permission_error",
            "unavailable": "server_error",
            "method_not_allowed": "request_error",
        }.get(kind, "request_error")
        return {"type": kind_type, "detail": message}

    def rate_limit_message(self, info):
        wait = max(1, int(math.ceil(info.reset_at - time.time())))
        return f"Request was throttled. Expected available in {wait} seconds."

    def missing_credentials_message(self):
        return "Authentication credentials were not provided."

    def new_id(self, pstate):
        return random_chars(22)

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
            "id": rec.id,
            "name": f.get("name"),
            "status": f.get("status"),
            "date_created": iso_ms(rec.created_ms),
            "date_modified": iso_ms(rec.updated_ms),
            "date_completed": None,
            "expiration_date": None,
            "version": "2",
            "recipients": [
                {
                    "email": f["recipient_email"],
                    "first_name": None,
                    "last_name": None,
                    "role": "",
                    "recipient_type": "signer",
                    "has_completed": False,
                }
            ]
            if f.get("recipient_email")
            else [],
            "metadata": {"lineup_id": f["lineup_id"]} if f.get("lineup_id") is not None else {},
        }

    def h_list(self, pstate, req):
        page = self.int_param(req, "page", 1, 1, 10**9)
        count = self.int_param(req, "count", 50, 1, 100)
        since = self.time_param(req, "modified_from")
        lineup, status = req.q("metadata_lineup_id"), req.q("status")
        records = [
            r
            for r in pstate.account_records(req.account)
            if (since is None or r.updated_ms >= since)
            and (lineup is None or str(r.fields.get("lineup_id")) == lineup)
            and (status is None or r.fields.get("status") == status)
        ]
        chunk = records[(page - 1) * count : page * count]
        return json_response(200, {"results": [self.render(r, req) for r in chunk]})

    # ------------------------------------------------------------------ webhooks
    def webhook_deliveries(
        self, sub: Subscription, rec: Record, created: bool, changed: dict
    ) -> list[tuple[str, Builder]]:
        """document_state_changed for every change, signed by a ?signature=<hex HMAC-SHA256(secret, body)>."""
        event_id = str(uuid.uuid4())
        body = json.dumps([{"event": "document_state_changed", "data": self.render(rec)}]).encode()
        separator = "&" if urlsplit(sub.url).query else "?"
        url = f"{sub.url}{separator}signature={hmac_hex(sub.secret, body)}"
        return [(event_id, lambda attempt: (url, {"Content-Type": "application/json"}, body))]
