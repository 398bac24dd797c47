"""PandaDoc documents ("Authorization: API-Key <key>"; webhooks signed in the query string)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import requests

from integrations.providers.base import (
    BaseClient,
    Page,
    ProviderError,
    RemoteRecord,
    WebhookEvent,
    hmac_equal,
    hmac_hex,
    iso_utc,
    load_json_body,
    parse_timestamp,
)

DOCUMENTS = "/public/v1/documents"
DOCUMENT = "/public/v1/documents/{id}"
FLAT_FIELDS = ("name", "status", "recipient_email", "lineup_id")

_ACTIONS = {
    "document_created": "created",
    "document_deleted": "deleted",
    "document_state_changed": "updated",
    "document_updated": "updated",
    "recipient_completed": "updated",
    "document_completed_pdf_ready": "updated",
}


class PandaDocClient(BaseClient):
    provider = "pandadoc"
    auth_type = "api_key"
    known_fields = FLAT_FIELDS
    field_aliases: ClassVar[dict[str, str]] = {"metadata": "lineup_id", "recipients": "recipient_email"}
    supports_webhooks = True
    finds_by_external_id = True  # many documents may go to one recipient: PandaDoc refuses no duplicate

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"API-Key {self.credentials.get('api_key') or ''}"}

    def _record(self, data: Any, response: requests.Response) -> RemoteRecord:
        remote_id = self._require_id(data, response, "id", "uuid")
        return RemoteRecord(
            remote_id=remote_id,
            fields=flatten(data),
            updated_at=parse_timestamp(data.get("date_modified") or data.get("updated_at")),
            raw=data,
        )

    def list_records(
        self, *, updated_since: datetime | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        try:
            page = max(1, int(cursor)) if cursor else 1
        except ValueError as e:
            raise ProviderError("validation", f"pandadoc: not a page cursor: {cursor!r}") from e
        count = max(1, min(int(limit), 100))
        params: dict[str, Any] = {"page": page, "count": count}
        if updated_since is not None:
            params["modified_from"] = iso_utc(updated_since)
        response = self._request("GET", DOCUMENTS, params=params)
        data = self._json_object(response, what="document list")
        items = data.get("results")
        if not isinstance(items, list):
            raise self._malformed("document list has no results[]", response)
        records = [self._record(item, response) for item in items]
        # PandaDoc gives no total or next link: a full page means there may be another.
        return Page(records=records, next_cursor=str(page + 1) if len(items) >= count else None)

    def get_record(self, remote_id: str) -> RemoteRecord:
        response = self._request("GET", DOCUMENT, path_params={"id": remote_id})
        return self._record(self._json_object(response, what="document"), response)

    def find_by_external_id(self, external_id: str) -> RemoteRecord | None:
        """List documents filtered by metadata (PandaDoc's `metadata_<key>=<value>`): ours holds lineup_id.

        PandaDoc's list gives document summaries, which may leave the metadata out: a summary without it is the
        filter's answer, ours. One that shows another lineup_id is not (a filter the server ignored)."""
        response = self._request("GET", DOCUMENTS, params={"metadata_lineup_id": external_id, "count": 100})
        items = self._json_object(response, what="document list").get("results")
        if not isinstance(items, list):
            raise self._malformed("document list has no results[]", response)
        for item in items:
            found = self._record(item, response)
            shown = found.fields.get("lineup_id")
            if shown in (None, ""):
                found.fields["lineup_id"] = external_id
                return found
            if str(shown) == external_id:
                return found
        return None

    def create_record(self, fields: dict) -> RemoteRecord:
        response = self._request("POST", DOCUMENTS, json_body=nest(fields))
        return self._record(self._json_object(response, what="created document"), response)

    def update_record(self, remote_id: str, fields: dict) -> RemoteRecord:
        response = self._request("PATCH", DOCUMENT, path_params={"id": remote_id}, json_body=nest(fields))
        if response.status_code == 204 or not (response.content or b"").strip():
            return RemoteRecord(remote_id=str(remote_id), fields=dict(fields), updated_at=None, raw={})
        return self._record(self._json_object(response, what="updated document"), response)

    def check_credentials(self) -> None:
        self._request("GET", DOCUMENTS, params={"count": 1})

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
        if not secret:
            return False
        given = parse_qs(urlsplit(url).query).get("signature", [None])[0]
        if not given:
            return False
        return hmac_equal(hmac_hex(secret, bytes(body)), given.strip().lower())

    @classmethod
    def sign_webhook(
        cls, *, secret: str, method: str = "POST", url: str, body: bytes, now: datetime | None = None
    ) -> tuple[str, dict[str, str], bytes]:
        parts = urlsplit(url)
        query = [(k, v) for k, vs in parse_qs(parts.query).items() for v in vs if k != "signature"]
        query.append(("signature", hmac_hex(secret, bytes(body))))
        signed = urlunsplit(parts._replace(query=urlencode(query)))
        return signed, {"Content-Type": "application/json"}, bytes(body)

    @classmethod
    def parse_webhook(cls, *, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        data = load_json_body(body)
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise ProviderError("validation", "pandadoc webhook body is not a list of events")
        events = []
        for item in data:
            doc = item.get("data") if isinstance(item, dict) else None
            if (
                not isinstance(doc, dict)
                or doc.get("id") in (None, "")
                or not isinstance(item.get("event"), str)
            ):
                raise ProviderError("validation", "pandadoc webhook event lacks event/data.id")
            # PandaDoc events carry no id: the event's own content identifies it (a redelivery hashes the same).
            event_id = hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()
            events.append(
                WebhookEvent(
                    event_id=event_id,
                    remote_id=str(doc["id"]),
                    action=_ACTIONS.get(item["event"], item["event"]),
                    occurred_at=parse_timestamp(doc.get("date_modified") or doc.get("date_updated")),
                    raw=item,
                )
            )
        return events


def flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """PandaDoc document -> flat fields (lineup_id = metadata.lineup_id; recipient_email top level or recipients[0])."""
    fields: dict[str, Any] = {k: data.get(k) for k in ("name", "status") if k in data}
    if "recipient_email" in data:
        fields["recipient_email"] = data.get("recipient_email")
    else:
        recipients = data.get("recipients")
        if isinstance(recipients, list) and recipients and isinstance(recipients[0], dict):
            fields["recipient_email"] = recipients[0].get("email")
    metadata = data.get("metadata")
    if isinstance(metadata, dict) and metadata.get("lineup_id") not in (None, ""):
        fields["lineup_id"] = metadata.get("lineup_id")
    return fields


def nest(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Flat fields -> PandaDoc's write shape (recipients[0].email, metadata.lineup_id)."""
    body = {k: v for k, v in fields.items() if k not in ("lineup_id", "recipient_email")}
    if "recipient_email" in fields:
        email = fields["recipient_email"]
        body["recipients"] = [{"email": email, "role": "", "recipient_type": "signer"}] if email else []
    if "lineup_id" in fields:
        body["metadata"] = {"lineup_id": fields["lineup_id"]}
    return body
