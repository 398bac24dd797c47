"""Workday recruiting prospects: an API key valid for one tenant, limit/offset paging; no webhooks.

See docs/provider-contract.md for the shapes; facts (quota, token lifetime) in sandbox/facts.py.
"""

from __future__ import annotations

import secrets

from sandbox.providers.base import Provider
from sandbox.state import iso_ms
from sandbox.wire import json_response

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
            summary = {
                "missing_field": "Validation failed: required field missing",
                "validation": "Validation failed",
                "duplicate": "Duplicate prospect",
            }[kind]
            return {"error": summary, "errors": [{"error": message, "field": field}]}
        if kind in ("auth_invalid", "auth_expired"):
            return {"error": "invalid_token", "errors": [{"error": message, "field": "Authorization"}]}
        body = {"error": message}
        if field:
            body["errors"] = [{"error": message, "field": field}]
        return body

    def check_scope(self, pstate, req):
        if req.params.get("tenant") != req.account:
            self.fail(
                "auth_invalid", f"The credentials are not valid for tenant {req.params.get('tenant')!r}"
            )

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
            "id": rec.id,
            "descriptor": " ".join(x for x in (f.get("firstName"), f.get("lastName")) if x),
            "href": f"{base}/{self.slug}/ccx/api/recruiting/v4/{rec.account}/prospects/{rec.id}",
            "firstName": f.get("firstName"),
            "lastName": f.get("lastName"),
            "email": f.get("email"),
            "externalId": f.get("lineup_id"),
            "createdOn": iso_ms(rec.created_ms),
            "updatedOn": iso_ms(rec.updated_ms),
        }

    def h_list(self, pstate, req):
        limit = self.int_param(req, "limit", 20, 1, 100)
        offset = self.int_param(req, "offset", 0, 0, 10**9)
        since = self.time_param(req, "updatedFrom")
        records = [r for r in pstate.account_records(req.account) if since is None or r.updated_ms >= since]
        return json_response(
            200,
            {"total": len(records), "data": [self.render(r, req) for r in records[offset : offset + limit]]},
        )
