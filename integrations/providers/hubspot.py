"""HubSpot CRM contacts (OAuth2, Bearer; webhooks v3)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from integrations.providers.base import (
    BaseClient,
    Page,
    ProviderError,
    RemoteRecord,
    TokenSet,
    WebhookEvent,
    epoch_ms,
    header_value,
    hmac_b64,
    hmac_equal,
    load_json_body,
    parse_retry_after,
    parse_timestamp,
)

CONTACTS = "/crm/v3/objects/contacts"
CONTACT = "/crm/v3/objects/contacts/{id}"
SEARCH = "/crm/v3/objects/contacts/search"
BATCH_CREATE = "/crm/v3/objects/contacts/batch/create"
BATCH_UPDATE = "/crm/v3/objects/contacts/batch/update"
PROPERTIES = ("email", "firstname", "lastname", "company", "jobtitle", "lineup_id")
# Properties HubSpot adds to every object: metadata, not fields we sync.
_META = {"hs_object_id", "createdate", "lastmodifieddate"}
MAX_WEBHOOK_AGE_S = 300
ACCESS_TOKEN_INFO = "/oauth/v1/access-tokens/{token}"

_ACTIONS = {
    "creation": "created",
    "propertyChange": "updated",
    "deletion": "deleted",
    "restore": "updated",
    "merge": "updated",
}


class HubSpotClient(BaseClient):
    provider = "hubspot"
    auth_type = "oauth2"
    token_endpoint = "/oauth/v1/token"
    authorize_endpoint = "/oauth/authorize"
    default_scopes = ("crm.objects.contacts.read", "crm.objects.contacts.write")
    rate_limit_header_prefixes = ("x-hubspot-ratelimit-", "retry-after")
    known_fields = PROPERTIES
    supports_webhooks = True
    batch_size = 100

    def _retry_after(self, response: requests.Response) -> float | None:
        # HubSpot sends no Retry-After: the rolling window's length is the safe wait.
        seconds = parse_retry_after(response.headers.get("Retry-After"), cap=self.retry_after_cap)
        if seconds is not None:
            return seconds
        interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        try:
            return min(max(float(interval) / 1000.0, 0.0), self.retry_after_cap) if interval else None
        except ValueError:
            return None

    # ---------------------------------------------------------------------------------- records

    def _record(self, data: Any, response: requests.Response) -> RemoteRecord:
        remote_id = self._require_id(data, response, "id")
        props = data.get("properties")
        if not isinstance(props, dict):
            raise self._malformed("contact has no properties object", response)
        fields = {k: v for k, v in props.items() if k not in _META}
        updated = parse_timestamp(data.get("updatedAt")) or parse_timestamp(props.get("lastmodifieddate"))
        return RemoteRecord(remote_id=remote_id, fields=fields, updated_at=updated, raw=data)

    def list_records(
        self, *, updated_since: datetime | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        limit = max(1, min(int(limit), 100))
        if updated_since is None:
            response = self._request(
                "GET", CONTACTS, params={"limit": limit, "after": cursor, "properties": ",".join(PROPERTIES)}
            )
        else:
            body: dict[str, Any] = {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "lastmodifieddate",
                                "operator": "GTE",
                                "value": str(epoch_ms(updated_since)),
                            }
                        ]
                    }
                ],
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                "properties": list(PROPERTIES),
                "limit": limit,
            }
            if cursor:
                body["after"] = cursor
            response = self._request("POST", SEARCH, json_body=body)
        data = self._json_object(response, what="contact list")
        results = data.get("results")
        if not isinstance(results, list):
            raise self._malformed("contact list has no results[]", response)
        records = [self._record(item, response) for item in results]
        next_after = ((data.get("paging") or {}).get("next") or {}).get("after")
        return Page(records=records, next_cursor=str(next_after) if next_after else None)

    def get_record(self, remote_id: str) -> RemoteRecord:
        response = self._request(
            "GET", CONTACT, path_params={"id": remote_id}, params={"properties": ",".join(PROPERTIES)}
        )
        return self._record(self._json_object(response, what="contact"), response)

    def create_record(self, fields: dict) -> RemoteRecord:
        response = self._request("POST", CONTACTS, json_body={"properties": _props(fields)})
        return self._record(self._json_object(response, what="created contact"), response)

    def update_record(self, remote_id: str, fields: dict) -> RemoteRecord:
        response = self._request(
            "PATCH", CONTACT, path_params={"id": remote_id}, json_body={"properties": _props(fields)}
        )
        return self._record(self._json_object(response, what="updated contact"), response)

    def create_records(self, items: list[dict]) -> list[RemoteRecord | ProviderError]:
        """POST batch/create (at most 100): results matched to inputs by lineup_id; 207 errors[] per input."""
        return self._batch(BATCH_CREATE, [{"properties": _props(f)} for f in items], items, key="lineup_id")

    def update_records(self, items: list[tuple[str, dict]]) -> list[RemoteRecord | ProviderError]:
        inputs = [{"id": str(rid), "properties": _props(f)} for rid, f in items]
        return self._batch(BATCH_UPDATE, inputs, [{"id": str(rid)} for rid, _ in items], key="id")

    def _batch(self, endpoint: str, inputs: list[dict], wanted: list[dict], *, key: str):
        response = self._request("POST", endpoint, json_body={"inputs": inputs})
        call = self.last_call
        data = self._json_object(response, what="batch result")
        found: dict[str, RemoteRecord | ProviderError] = {}
        for item in data.get("results") or []:
            remote = self._record(item, response)
            found[str(remote.remote_id if key == "id" else remote.fields.get(key))] = remote
        for item in data.get("errors") or []:
            context = item.get("context") or {}
            for value in context.get("ids" if key == "id" else key) or []:
                found[str(value)] = self._item_error(item, call)
        missing = ProviderError("unknown", "hubspot: the batch answer did not mention this input", call=call)
        return [found.get(str(w.get(key)), missing) for w in wanted]

    def check_credentials(self) -> None:
        self._request("GET", CONTACTS, params={"limit": 1})

    def account_of(self, tokens: TokenSet) -> str | None:
        """HubSpot's access-token metadata names the portal: GET /oauth/v1/access-tokens/{token} -> hub_id."""
        if self.url_guard is not None:  # the token travels in the path
            self.url_guard(f"{self.base_url}{ACCESS_TOKEN_INFO}")
        response = self._request(
            "GET", ACCESS_TOKEN_INFO, path_params={"token": tokens.access_token}, authenticated=False
        )
        hub_id = self._json_object(response, what="access-token metadata").get("hub_id")
        return f"portal:{hub_id}" if hub_id not in (None, "") else None

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
        signature = header_value(headers, "X-HubSpot-Signature-v3")
        timestamp = header_value(headers, "X-HubSpot-Request-Timestamp")
        if not secret or not signature or not timestamp:
            return False
        try:
            sent_ms = int(str(timestamp).strip())
        except ValueError:
            return False
        now_ms = epoch_ms(now or datetime.now(UTC))
        if abs(now_ms - sent_ms) > MAX_WEBHOOK_AGE_S * 1000:
            return False
        expected = hmac_b64(
            secret, method.upper().encode() + url.encode() + bytes(body) + str(timestamp).strip().encode()
        )
        return hmac_equal(expected, signature.strip())

    @classmethod
    def sign_webhook(
        cls, *, secret: str, method: str = "POST", url: str, body: bytes, now: datetime | None = None
    ) -> tuple[str, dict[str, str], bytes]:
        timestamp = str(epoch_ms(now or datetime.now(UTC)))
        signature = hmac_b64(
            secret, method.upper().encode() + url.encode() + bytes(body) + timestamp.encode()
        )
        return (
            url,
            {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp},
            bytes(body),
        )

    @classmethod
    def parse_webhook(cls, *, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        data = load_json_body(body)
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise ProviderError("validation", "hubspot webhook body is not a list of events")
        events = []
        for item in data:
            if (
                not isinstance(item, dict)
                or item.get("objectId") in (None, "")
                or item.get("eventId") in (None, "")
            ):
                raise ProviderError(
                    "validation", f"hubspot webhook event lacks eventId/objectId: {json.dumps(item)[:200]}"
                )
            kind = str(item.get("subscriptionType") or "")
            action = _ACTIONS.get(kind.rsplit(".", 1)[-1], kind or "updated")
            events.append(
                WebhookEvent(
                    event_id=str(item["eventId"]),
                    remote_id=str(item["objectId"]),
                    action=action,
                    occurred_at=parse_timestamp(item.get("occurredAt")),
                    raw=item,
                )
            )
        return events


def _props(fields: Mapping[str, Any]) -> dict[str, Any]:
    """HubSpot properties are strings; None clears a property."""

    def text(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        return v if isinstance(v, str) else str(v)

    return {k: text(v) for k, v in fields.items()}
