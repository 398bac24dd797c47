"""Workday Recruiting prospects (Bearer API key; the tenant is part of every path; no webhooks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import requests

from integrations.providers.base import (
    BaseClient,
    Page,
    ProviderError,
    RemoteRecord,
    iso_utc,
    parse_timestamp,
)

PROSPECTS = "/ccx/api/recruiting/v4/{tenant}/prospects"
PROSPECT = "/ccx/api/recruiting/v4/{tenant}/prospects/{id}"
FLAT_FIELDS = ("firstName", "lastName", "email", "lineup_id")


class WorkdayClient(BaseClient):
    provider = "workday"
    auth_type = "api_key"
    known_fields = FLAT_FIELDS
    field_aliases: ClassVar[dict[str, str]] = {"externalId": "lineup_id"}

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials.get('api_key') or ''}"}

    @property
    def tenant(self) -> str:
        tenant = self.credentials.get("tenant")
        if not tenant:
            raise ProviderError("auth_invalid", "workday: the credentials carry no tenant")
        return str(tenant)

    def _record(self, data: Any, response: requests.Response) -> RemoteRecord:
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]
        remote_id = self._require_id(data, response, "id")
        return RemoteRecord(
            remote_id=remote_id,
            fields=flatten(data),
            updated_at=parse_timestamp(
                data.get("updatedOn") or data.get("updatedAt") or data.get("lastUpdated")
            ),
            raw=data,
        )

    def list_records(
        self, *, updated_since: datetime | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        try:
            offset = int(cursor) if cursor else 0
        except ValueError as e:
            raise ProviderError("validation", f"workday: not an offset cursor: {cursor!r}") from e
        limit = max(1, min(int(limit), 100))
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if updated_since is not None:
            params["updatedFrom"] = iso_utc(updated_since)
        response = self._request("GET", PROSPECTS, path_params={"tenant": self.tenant}, params=params)
        data = self._json_object(response, what="prospect list")
        items = data.get("data")
        if not isinstance(items, list):
            raise self._malformed("prospect list has no data[]", response)
        records = [self._record(item, response) for item in items]
        total = data.get("total")
        seen = offset + len(items)
        more = bool(items) and (seen < total if isinstance(total, int) else len(items) >= limit)
        return Page(records=records, next_cursor=str(seen) if more else None)

    def get_record(self, remote_id: str) -> RemoteRecord:
        response = self._request("GET", PROSPECT, path_params={"tenant": self.tenant, "id": remote_id})
        return self._record(self._json_object(response, what="prospect"), response)

    def create_record(self, fields: dict) -> RemoteRecord:
        response = self._request(
            "POST", PROSPECTS, path_params={"tenant": self.tenant}, json_body=nest(fields)
        )
        return self._record(self._json_object(response, what="created prospect"), response)

    def update_record(self, remote_id: str, fields: dict) -> RemoteRecord:
        response = self._request(
            "PATCH", PROSPECT, path_params={"tenant": self.tenant, "id": remote_id}, json_body=nest(fields)
        )
        return self._record(self._json_object(response, what="updated prospect"), response)

    def check_credentials(self) -> None:
        self._request("GET", PROSPECTS, path_params={"tenant": self.tenant}, params={"limit": 1})


def flatten(data: dict) -> dict[str, Any]:
    fields: dict[str, Any] = {k: data.get(k) for k in ("firstName", "lastName", "email") if k in data}
    if data.get("externalId") not in (None, ""):
        fields["lineup_id"] = data.get("externalId")
    return fields


def nest(fields: dict) -> dict[str, Any]:
    body = {k: v for k, v in fields.items() if k != "lineup_id"}
    if "lineup_id" in fields:
        body["externalId"] = fields["lineup_id"]
    return body
