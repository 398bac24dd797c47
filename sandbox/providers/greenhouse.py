"""Greenhouse Harvest v1: candidates over HTTP Basic (API key), Link-header paging, signed webhooks.

See docs/provider-contract.md for the shapes; facts (quota, token lifetime) in sandbox/facts.py.
"""

from __future__ import annotations

import json
import math
import uuid
from urllib.parse import urlencode

from sandbox.providers.base import Builder, Provider, hmac_hex, rng
from sandbox.state import Record, Subscription, iso_ms
from sandbox.wire import json_response


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
            return {
                "message": "Invalid Basic Auth credentials" if message == "Invalid credentials" else message
            }
        if kind in ("validation", "missing_field", "duplicate"):
            if kind == "duplicate":
                message = f"A candidate with this email address already exists. Existing ID: {existing_id}"
            return {"message": "Validation error", "errors": [{"message": message, "field": field}]}
        if kind == "bad_request" and field:
            return {"message": "Validation error", "errors": [{"message": message, "field": field}]}
        return {"message": message}

    def new_id(self, pstate):
        return str(rng.randint(10_000_000, 99_999_999))

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
                if isinstance(item, dict) and (
                    item.get("name_key") == "lineup_id" or item.get("id") == "lineup_id"
                ):
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
            "id": int(rec.id),
            "first_name": f.get("first_name"),
            "last_name": f.get("last_name"),
            "company": f.get("company"),
            "title": f.get("title"),
            "created_at": iso_ms(rec.created_ms),
            "updated_at": iso_ms(rec.updated_ms),
            "last_activity": iso_ms(rec.updated_ms),
            "is_private": False,
            "photo_url": None,
            "attachments": [],
            "application_ids": [],
            "phone_numbers": [],
            "addresses": [],
            "email_addresses": [{"value": f["email"], "type": "personal"}] if f.get("email") else [],
            "website_addresses": [],
            "social_media_addresses": [],
            "recruiter": None,
            "coordinator": None,
            "can_email": True,
            "tags": [],
            "applications": [],
            "educations": [],
            "employments": [],
            "custom_fields": {"lineup_id": lineup},
            "keyed_custom_fields": {"lineup_id": {"name": "Lineup ID", "type": "short_text", "value": lineup}}
            if lineup is not None
            else {},
        }

    def h_list(self, pstate, req):
        per_page = self.int_param(req, "per_page", 100, 1, 500)
        page = self.int_param(req, "page", 1, 1, 10**9)
        updated_after = self.time_param(req, "updated_after")
        updated_before = self.time_param(req, "updated_before")
        created_after = self.time_param(req, "created_after")
        email = req.q("email")
        records = [
            r
            for r in pstate.account_records(req.account)
            if (updated_after is None or r.updated_ms >= updated_after)
            and (updated_before is None or r.updated_ms < updated_before)
            and (created_after is None or r.created_ms >= created_after)
            and (email is None or str(r.fields.get("email", "")).lower() == email.lower())
        ]
        last = max(1, math.ceil(len(records) / per_page))
        chunk = records[(page - 1) * per_page : page * per_page]
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

    # ------------------------------------------------------------------ webhooks
    def webhook_deliveries(
        self, sub: Subscription, rec: Record, created: bool, changed: dict
    ) -> list[tuple[str, Builder]]:
        """Header "Signature: sha256 <hex HMAC-SHA256(secret, raw body)>" and a Greenhouse-Event-ID."""
        event_id = str(uuid.uuid4())
        body = json.dumps(
            {
                "action": "candidate_created" if created else "candidate_updated",
                "payload": {"candidate": self.render(rec)},
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "Signature": "sha256 " + hmac_hex(sub.secret, body),
            "Greenhouse-Event-ID": event_id,
        }
        return [(event_id, lambda attempt: (sub.url, headers, body))]
