"""Lever opportunities (OAuth2, Bearer; webhooks carry their signature in the body)."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import requests

from integrations.providers.base import (
    BaseClient,
    Page,
    ProviderError,
    RemoteRecord,
    WebhookEvent,
    epoch_ms,
    hmac_equal,
    hmac_hex,
    load_json_body,
    parse_timestamp,
)
from integrations.providers.jsonlimits import JsonRefused, loads_limited

OPPORTUNITIES = "/v1/opportunities"
OPPORTUNITY = "/v1/opportunities/{id}"
FLAT_FIELDS = ("name", "headline", "email", "lineup_id")
TAG_PREFIX = "lineup:"
# Issue 13: a delivery older than this (by its signed triggeredAt) is refused; a little clock skew is allowed.
MAX_WEBHOOK_AGE_S = 300
MAX_CLOCK_SKEW_S = 300
# What signs a delivery: never stored or shown (a viewer could copy them into a forged delivery).
SIGNING_FIELDS = ("token", "signature")

_ACTIONS = {
    "candidateCreated": "created",
    "candidateUpdated": "updated",
    "candidateDeleted": "deleted",
    "candidateArchiveChange": "updated",
    "candidateStageChange": "updated",
    "candidateHired": "updated",
}


class LeverClient(BaseClient):
    provider = "lever"
    auth_type = "oauth2"
    token_endpoint = "/oauth/token"
    authorize_endpoint = "/oauth/authorize"
    default_scopes = ("opportunities:read:admin", "opportunities:write:admin", "offline_access")
    rate_limit_header_prefixes = ("x-ratelimit-", "ratelimit-", "retry-after")
    known_fields = FLAT_FIELDS
    field_aliases: ClassVar[dict[str, str]] = {"emails": "email", "tags": "lineup_id"}
    supports_webhooks = True

    def _perform_as(self) -> str:
        return str(self.credentials.get("perform_as") or self.credentials.get("user_id") or "lineup-ops")

    def _record(self, data: Any, response: requests.Response) -> RemoteRecord:
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]
        remote_id = self._require_id(data, response, "id")
        return RemoteRecord(
            remote_id=remote_id,
            fields=flatten(data),
            updated_at=parse_timestamp(data.get("updatedAt")),
            raw=data,
        )

    def list_records(
        self, *, updated_since: datetime | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        params: dict[str, Any] = {"limit": max(1, min(int(limit), 100)), "offset": cursor or None}
        if updated_since is not None:
            params["updated_at_start"] = epoch_ms(updated_since)
        response = self._request("GET", OPPORTUNITIES, params=params)
        data = self._json_object(response, what="opportunity list")
        items = data.get("data")
        if not isinstance(items, list):
            raise self._malformed("opportunity list has no data[]", response)
        records = [self._record(item, response) for item in items]
        next_token = data.get("next") if data.get("hasNext") else None
        return Page(records=records, next_cursor=str(next_token) if next_token else None)

    def get_record(self, remote_id: str) -> RemoteRecord:
        response = self._request("GET", OPPORTUNITY, path_params={"id": remote_id})
        return self._record(self._json_object(response, what="opportunity"), response)

    def create_record(self, fields: dict) -> RemoteRecord:
        response = self._request(
            "POST", OPPORTUNITIES, params={"perform_as": self._perform_as()}, json_body=nest(fields)
        )
        return self._record(self._json_object(response, what="created opportunity"), response)

    def update_record(self, remote_id: str, fields: dict) -> RemoteRecord:
        response = self._request(
            "PUT",
            OPPORTUNITY,
            path_params={"id": remote_id},
            params={"perform_as": self._perform_as()},
            json_body=nest(fields),
        )
        return self._record(self._json_object(response, what="updated opportunity"), response)

    def check_credentials(self) -> None:
        self._request("GET", OPPORTUNITIES, params={"limit": 1})

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
        """Lever signs only token + triggeredAt (provider-api-facts.md): the signature must match AND
        triggeredAt must be recent (MAX_WEBHOOK_AGE_S), so a copied signature cannot be replayed later; the
        unsigned rest of the body is only a hint (processing re-reads the opportunity from the API)."""
        if not secret:
            return False
        try:
            data = loads_limited(body)
        except JsonRefused:
            return False
        if not isinstance(data, dict):
            return False
        token, triggered, signature = data.get("token"), data.get("triggeredAt"), data.get("signature")
        if not isinstance(token, str) or not isinstance(signature, str):
            return False
        if isinstance(triggered, bool) or not isinstance(triggered, (int, str)):
            return False
        try:
            sent_ms = int(str(triggered).strip())
        except ValueError:
            return False
        now_ms = epoch_ms(now or datetime.now(UTC))
        if sent_ms < now_ms - MAX_WEBHOOK_AGE_S * 1000 or sent_ms > now_ms + MAX_CLOCK_SKEW_S * 1000:
            return False
        return hmac_equal(hmac_hex(secret, token + str(triggered)), signature.strip().lower())

    @classmethod
    def sign_webhook(
        cls, *, secret: str, method: str = "POST", url: str, body: bytes, now: datetime | None = None
    ) -> tuple[str, dict[str, str], bytes]:
        data = json.loads(body)
        data.setdefault("token", secrets.token_hex(16))
        data.setdefault("triggeredAt", epoch_ms(now or datetime.now(UTC)))
        data["signature"] = hmac_hex(secret, str(data["token"]) + str(data["triggeredAt"]))
        return url, {"Content-Type": "application/json"}, json.dumps(data).encode()

    @classmethod
    def parse_webhook(cls, *, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        data = load_json_body(body)
        if not isinstance(data, dict) or not isinstance(data.get("event"), str):
            raise ProviderError("validation", "lever webhook has no event")
        inner = data.get("data")
        opportunity = inner.get("opportunityId") if isinstance(inner, dict) else None
        if opportunity in (None, ""):
            raise ProviderError("validation", "lever webhook has no data.opportunityId")
        # The dedupe id comes from the signed part only (the body's "id" is unsigned: a forger could pick it).
        signed = f"{data.get('token', '')}:{data.get('triggeredAt', '')}".encode()
        event_id = "lever-" + hashlib.sha256(signed).hexdigest()[:40]
        return [
            WebhookEvent(
                event_id=event_id,
                remote_id=str(opportunity),
                action=_ACTIONS.get(data["event"], data["event"]),
                occurred_at=parse_timestamp(data.get("triggeredAt")),
                raw={k: v for k, v in data.items() if k not in SIGNING_FIELDS},
            )
        ]


def flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """Lever opportunity -> flat fields (email = emails[0], lineup_id = the "lineup:<id>" tag)."""
    fields: dict[str, Any] = {k: data.get(k) for k in ("name", "headline") if k in data}
    emails = data.get("emails")
    if isinstance(emails, list) and emails:
        fields["email"] = emails[0]
    tags = data.get("tags")
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, str) and tag.startswith(TAG_PREFIX):
                fields["lineup_id"] = tag[len(TAG_PREFIX) :]
                break
    return fields


def nest(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Flat fields -> Lever's write shape."""
    body = {k: v for k, v in fields.items() if k not in ("email", "lineup_id")}
    if "email" in fields:
        body["emails"] = [fields["email"]] if fields["email"] else []
    if fields.get("lineup_id") not in (None, ""):
        body["tags"] = [f"{TAG_PREFIX}{fields['lineup_id']}"]
    return body
