"""Greenhouse Harvest v1 candidates (HTTP Basic with the API key; webhooks signed with HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import requests

from integrations.providers.base import (
    BaseClient,
    Page,
    ProviderError,
    RemoteRecord,
    WebhookEvent,
    header_value,
    hmac_equal,
    hmac_hex,
    iso_utc,
    load_json_body,
    parse_timestamp,
)

CANDIDATES = "/v1/candidates"
CANDIDATE = "/v1/candidates/{id}"
FLAT_FIELDS = ("first_name", "last_name", "company", "title", "email", "lineup_id")

_ACTIONS = {
    "candidate_created": "created",
    "candidate_updated": "updated",
    "candidate_deleted": "deleted",
    "delete_candidate": "deleted",
    "new_candidate_application": "created",
}


class GreenhouseClient(BaseClient):
    provider = "greenhouse"
    auth_type = "api_key"
    rate_limit_header_prefixes = ("x-ratelimit-", "retry-after")
    known_fields = FLAT_FIELDS
    field_aliases: ClassVar[dict[str, str]] = {"email_addresses": "email", "custom_fields": "lineup_id"}
    supports_webhooks = True

    def _auth_headers(self) -> dict[str, str]:
        key = str(self.credentials.get("api_key") or "")
        return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}

    def _write_headers(self) -> dict[str, str]:
        # Harvest attributes writes to a Greenhouse user; the integration's credentials may name one.
        return {
            "On-Behalf-Of": str(
                self.credentials.get("on_behalf_of") or self.credentials.get("user_id") or "lineup-ops"
            )
        }

    # ---------------------------------------------------------------------------------- records

    def _record(self, data: Any, response: requests.Response) -> RemoteRecord:
        remote_id = self._require_id(data, response, "id")
        return RemoteRecord(
            remote_id=remote_id,
            fields=flatten(data),
            updated_at=parse_timestamp(data.get("updated_at")),
            raw=data,
        )

    def list_records(
        self, *, updated_since: datetime | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        page = _page_number(cursor)
        params: dict[str, Any] = {"per_page": max(1, min(int(limit), 500)), "page": page}
        if updated_since is not None:
            params["updated_after"] = iso_utc(updated_since)
        response = self._request("GET", CANDIDATES, params=params)
        data = self._json(response, what="candidate list")
        if not isinstance(data, list):
            raise self._malformed("candidate list is not a JSON array", response)
        records = [self._record(item, response) for item in data]
        next_link = response.links.get("next", {}).get("url")
        next_cursor = None
        if next_link:
            next_page = parse_qs(urlsplit(next_link).query).get("page", [None])[0]
            next_cursor = str(next_page) if next_page else None
        return Page(records=records, next_cursor=next_cursor)

    def get_record(self, remote_id: str) -> RemoteRecord:
        response = self._request("GET", CANDIDATE, path_params={"id": remote_id})
        return self._record(self._json_object(response, what="candidate"), response)

    def create_record(self, fields: dict) -> RemoteRecord:
        response = self._request("POST", CANDIDATES, json_body=nest(fields), headers=self._write_headers())
        return self._record(self._json_object(response, what="created candidate"), response)

    def update_record(self, remote_id: str, fields: dict) -> RemoteRecord:
        response = self._request(
            "PATCH",
            CANDIDATE,
            path_params={"id": remote_id},
            json_body=nest(fields),
            headers=self._write_headers(),
        )
        return self._record(self._json_object(response, what="updated candidate"), response)

    def check_credentials(self) -> None:
        self._request("GET", CANDIDATES, params={"per_page": 1})

    # ---------------------------------------------------------------------------------- webhooks

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
        signature = header_value(headers, "Signature")
        if not secret or not signature:
            return False
        scheme, _, digest = signature.strip().partition(" ")
        if scheme.lower() != "sha256" or not digest:
            return False
        return hmac_equal(hmac_hex(secret, bytes(body)), digest.strip().lower())

    @classmethod
    def sign_webhook(
        cls, *, secret: str, method: str = "POST", url: str, body: bytes, now: datetime | None = None
    ) -> tuple[str, dict[str, str], bytes]:
        event_id = hashlib.sha256(bytes(body)).hexdigest()[:32]
        return (
            url,
            {"Signature": f"sha256 {hmac_hex(secret, bytes(body))}", "Greenhouse-Event-ID": event_id},
            bytes(body),
        )

    @classmethod
    def parse_webhook(cls, *, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        data = load_json_body(body)
        if not isinstance(data, dict) or not isinstance(data.get("action"), str):
            raise ProviderError("validation", "greenhouse webhook has no action")
        payload = data.get("payload")
        candidate = payload.get("candidate") if isinstance(payload, dict) else None
        if not isinstance(candidate, dict) or candidate.get("id") in (None, ""):
            raise ProviderError("validation", "greenhouse webhook has no payload.candidate.id")
        # Only the body is signed (Greenhouse-Event-ID is not): the body's hash is the dedupe id, so a signed
        # body re-sent with a new Greenhouse-Event-ID is a duplicate (issue 13, M3).
        event_id = "greenhouse-" + hashlib.sha256(bytes(body)).hexdigest()[:40]
        return [
            WebhookEvent(
                event_id=str(event_id),
                remote_id=str(candidate["id"]),
                action=_ACTIONS.get(data["action"], data["action"]),
                occurred_at=parse_timestamp(candidate.get("updated_at")),
                raw=data,
            )
        ]


def flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """Greenhouse candidate -> flat fields (email = email_addresses[0].value, lineup_id = custom_fields.lineup_id)."""
    fields: dict[str, Any] = {
        k: data.get(k) for k in ("first_name", "last_name", "company", "title") if k in data
    }
    emails = data.get("email_addresses")
    if isinstance(emails, list) and emails:
        first = emails[0]
        fields["email"] = first.get("value") if isinstance(first, dict) else first
    elif "email" in data:
        fields["email"] = data.get("email")
    custom = data.get("custom_fields")
    if isinstance(custom, dict) and custom.get("lineup_id") not in (None, ""):
        fields["lineup_id"] = custom.get("lineup_id")
    elif isinstance(custom, list):
        for entry in custom:
            if isinstance(entry, dict) and (entry.get("name_key") or entry.get("name")) == "lineup_id":
                fields["lineup_id"] = entry.get("value")
    return fields


def nest(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Flat fields -> Greenhouse's write shape."""
    body = {k: v for k, v in fields.items() if k not in ("email", "lineup_id")}
    if "email" in fields:
        email = fields["email"]
        body["email_addresses"] = [{"value": email, "type": "personal"}] if email else []
    if "lineup_id" in fields:
        body["custom_fields"] = {"lineup_id": fields["lineup_id"]}
    return body


def _page_number(cursor: str | None) -> int:
    if not cursor:
        return 1
    try:
        return max(1, int(cursor))
    except ValueError as e:
        raise ProviderError("validation", f"greenhouse: not a page cursor: {cursor!r}") from e
