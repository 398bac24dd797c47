"""Clearbit: person lookups by email over a secret key (no writes, no webhooks).

See docs/provider-contract.md for the shapes; facts (quota, token lifetime) in sandbox/facts.py.
"""

from __future__ import annotations

from sandbox.providers.base import Provider
from sandbox.state import iso_ms
from sandbox.wire import json_response


class Clearbit(Provider):
    slug = "clearbit"
    auth_schemes = ("bearer", "basic")
    key_prefix = "sk_"
    dedupe = False
    routes_spec = [("GET", r"/v2/people/find", "h_find", "api")]

    def error_body(self, kind, message, *, field=None, existing_id=None, code=None):
        error_type = (
            code
            or {
                "auth_invalid": "auth_required",
                "auth_expired": "auth_required",
                "forbidden": "forbidden",
                "rate_limited": "rate_limit",
                "validation": "invalid_request",
                "missing_field": "invalid_request",
                "duplicate": "invalid_request",
                "unavailable": "service_unavailable",
                "not_found": "unknown_record",
                "bad_request": "invalid_request",
                "method_not_allowed": "invalid_request",
            }[kind]
        )
        return {"error": {"type": error_type, "message": message}}

    def render(self, rec, req=None):
        f = rec.fields
        name = f.get("name") or ""
        given, _, family = name.partition(" ")
        return {
            "id": rec.id,
            "name": {"fullName": name or None, "givenName": given or None, "familyName": family or None},
            "email": f.get("email"),
            "location": None,
            "timeZone": None,
            "utcOffset": None,
            "bio": None,
            "site": None,
            "avatar": None,
            "employment": {
                "domain": None,
                "name": f.get("company"),
                "title": f.get("title"),
                "role": None,
                "subRole": None,
                "seniority": None,
            },
            "facebook": {"handle": None},
            "github": {"handle": None},
            "twitter": {"handle": None},
            "linkedin": {"handle": None},
            "fuzzy": False,
            "emailProvider": False,
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
