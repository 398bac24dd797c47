"""Clearbit person enrichment (Bearer API key; read only: find a person by email)."""

from __future__ import annotations

from typing import Any, ClassVar

from integrations.providers.base import BaseClient, RemoteRecord, parse_timestamp

PERSON_FIND = "/v2/people/find"


class ClearbitClient(BaseClient):
    provider = "clearbit"
    auth_type = "api_key"
    known_fields = ("email", "name", "company", "title")
    field_aliases: ClassVar[dict[str, str]] = {"employment": "company", "fullName": "name"}

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        # True after a find_person answered 202: Clearbit is looking the person up; ask again later.
        self.pending = False

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials.get('api_key') or ''}"}

    def find_person(self, email: str) -> RemoteRecord | None:
        """The person behind an email; None when unknown (404) or still being looked up (202, see .pending)."""
        response = self._request("GET", PERSON_FIND, params={"email": email}, ok_statuses=(404,))
        self.pending = response.status_code == 202
        if response.status_code in (202, 404):
            return None
        data = self._json_object(response, what="person")
        remote_id = self._require_id(data, response, "id")
        return RemoteRecord(
            remote_id=remote_id,
            fields=flatten(data),
            updated_at=parse_timestamp(data.get("indexedAt") or data.get("updated_at")),
            raw=data,
        )

    def check_credentials(self) -> None:
        # Any answer but 401/403 proves the key: an unknown address is a 404, which is fine here.
        self._request(
            "GET", PERSON_FIND, params={"email": "credentials-check@example.com"}, ok_statuses=(404,)
        )


def flatten(data: dict) -> dict[str, Any]:
    """Clearbit person -> flat fields (name = name.fullName, company/title = employment.name/title)."""
    fields: dict[str, Any] = {}
    if "email" in data:
        fields["email"] = data.get("email")
    name = data.get("name")
    if isinstance(name, dict):
        full = name.get("fullName") or " ".join(
            p for p in (name.get("givenName"), name.get("familyName")) if p
        )
        fields["name"] = full or None
    elif isinstance(name, str):
        fields["name"] = name
    employment = data.get("employment")
    if isinstance(employment, dict):
        fields["company"] = employment.get("name")
        fields["title"] = employment.get("title")
    return fields
