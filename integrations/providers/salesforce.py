"""Salesforce Contacts (OAuth2, Bearer; no webhooks: polling with the updated/ endpoint)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests

from integrations.providers.base import (
    BaseClient,
    Page,
    ProviderError,
    ProviderStatus,
    RemoteRecord,
    TokenSet,
    parse_timestamp,
)

API_VERSION = "v59.0"
DATA = f"/services/data/{API_VERSION}"
CONTACT_COLLECTION = f"{DATA}/sobjects/Contact/"
CONTACT = f"{DATA}/sobjects/Contact/{{id}}"
UPDATED = f"{DATA}/sobjects/Contact/updated/"
QUERY = f"{DATA}/query/"
COLLECTION = f"{DATA}/composite/sobjects/"
FIELDS = ("Email", "FirstName", "LastName", "Title", "Lineup_Id__c")
LINEUP_FIELD = "Lineup_Id__c"
_META = {"attributes", "Id", "LastModifiedDate", "SystemModstamp", "CreatedDate", "IsDeleted"}
# The updated/ endpoint only looks back 30 days.
MAX_LOOKBACK = timedelta(days=29, hours=23)

# Trust statuses (OK, MINOR_INCIDENT_CORE, MAJOR_INCIDENT_NONCORE, MAINTENANCE_CORE, ...) onto Statuspage indicators.
_TRUST_DESCRIPTIONS = {
    "none": "All Systems Operational",
    "minor": "Minor incident or maintenance",
    "major": "Major incident",
}


def trust_indicator(status: str) -> str:
    status = (status or "").upper()
    if status == "OK":
        return "none"
    if status.startswith("MAJOR_INCIDENT"):
        return "major"
    if status.startswith(("MINOR_INCIDENT", "MAINTENANCE")):
        return "minor"
    return "minor"


def org_from_identity(identity: Any) -> str | None:
    """The org id in a token response's identity URL (https://login.salesforce.com/id/<org>/<user>)."""
    if not isinstance(identity, str):
        return None
    parts = [p for p in urlsplit(identity).path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "id" and parts[1]:
        return parts[1]
    return None


class SalesforceClient(BaseClient):
    provider = "salesforce"
    auth_type = "oauth2"
    token_endpoint = "/services/oauth2/token"
    authorize_endpoint = "/services/oauth2/authorize"
    default_scopes = ("api", "refresh_token")
    rate_limit_header_prefixes = ("sforce-limit-info", "retry-after")
    known_fields = FIELDS
    field_aliases: ClassVar[dict[str, str]] = {LINEUP_FIELD: "lineup_id"}
    default_instance = "NA1"
    batch_size = 200

    def _token_request(self, form: dict[str, Any], *, grant: str) -> TokenSet:
        tokens = super()._token_request(form, grant=grant)
        # Salesforce sends no expires_in: the session timeout of the org decides (2 h by default).
        tokens.expires_in = None
        tokens.extra = {
            k: v for k, v in tokens.extra.items() if k in ("instance_url", "id", "issued_at", "scope")
        }
        if tokens.extra.get("instance_url"):
            self.credentials["instance_url"] = tokens.extra["instance_url"]
        return tokens

    # ---------------------------------------------------------------------------------- records

    def _record(self, data: Any, response: requests.Response) -> RemoteRecord:
        remote_id = self._require_id(data, response, "Id", "id")
        fields = {k: v for k, v in data.items() if k not in _META}
        if LINEUP_FIELD in fields:
            fields["lineup_id"] = fields.pop(LINEUP_FIELD)
        return RemoteRecord(
            remote_id=remote_id,
            fields=fields,
            updated_at=parse_timestamp(data.get("LastModifiedDate") or data.get("SystemModstamp")),
            raw=data,
        )

    def list_records(
        self, *, updated_since: datetime | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page:
        limit = max(1, min(int(limit), 2000))
        if (cursor and cursor.startswith("updated|")) or (updated_since is not None and not cursor):
            return self._list_updated(updated_since, cursor, limit)
        if cursor:
            # nextRecordsUrl is a path below the instance, e.g. /services/data/v59.0/query/01g...-2000
            locator = (
                (urlsplit(cursor).path if cursor.startswith("http") else cursor)
                .rstrip("/")
                .rsplit("/", 1)[-1]
            )
            response = self._request("GET", QUERY + "{locator}", path_params={"locator": locator})
        else:
            soql = f"SELECT Id, {', '.join(FIELDS)}, LastModifiedDate FROM Contact ORDER BY LastModifiedDate"
            # Batch size is a header (200..2000); a SOQL LIMIT would cap the whole result, not the page.
            response = self._request(
                "GET",
                QUERY,
                params={"q": soql},
                headers={"Sforce-Query-Options": f"batchSize={max(200, limit)}"},
            )
        data = self._json_object(response, what="query result")
        rows = data.get("records")
        if not isinstance(rows, list):
            raise self._malformed("query result has no records[]", response)
        records = [self._complete(self._record(row, response)) for row in rows]
        next_url = data.get("nextRecordsUrl") if not data.get("done", True) else None
        return Page(records=records, next_cursor=str(next_url) if next_url else None)

    def _complete(self, record: RemoteRecord) -> RemoteRecord:
        # A query that only answers Ids (the sandbox's "SELECT Id FROM Contact") needs one GET per record.
        return record if record.fields else self.get_record(record.remote_id)

    def _list_updated(self, updated_since: datetime | None, cursor: str | None, limit: int) -> Page:
        if cursor:
            try:
                _, start_s, end_s, offset_s = cursor.split("|", 3)
                offset = int(offset_s)
            except ValueError as e:
                raise ProviderError(
                    "validation", f"salesforce: not a cursor of this client: {cursor!r}"
                ) from e
        else:
            now = datetime.now(UTC)
            start = max(updated_since or now - MAX_LOOKBACK, now - MAX_LOOKBACK)
            if start.tzinfo is None:
                start = start.replace(tzinfo=UTC)
            start_s = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
            # Seconds are truncated on the wire: round the end up so this second's changes are covered.
            end_s = (now + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
            offset = 0
            if start >= now:  # nothing can have changed after now (and Salesforce refuses end <= start)
                return Page(records=[], next_cursor=None)
        response = self._request("GET", UPDATED, params={"start": start_s, "end": end_s})
        data = self._json_object(response, what="updated ids")
        ids = data.get("ids")
        if not isinstance(ids, list):
            raise self._malformed("updated/ answer has no ids[]", response)
        chunk = ids[offset : offset + limit]
        records = [self.get_record(str(remote_id)) for remote_id in chunk]
        more = offset + limit < len(ids)
        return Page(
            records=records, next_cursor=f"updated|{start_s}|{end_s}|{offset + limit}" if more else None
        )

    def get_record(self, remote_id: str) -> RemoteRecord:
        response = self._request("GET", CONTACT, path_params={"id": remote_id})
        return self._record(self._json_object(response, what="contact"), response)

    def create_record(self, fields: dict) -> RemoteRecord:
        body = _to_salesforce(fields)
        response = self._request("POST", CONTACT_COLLECTION, json_body=body)
        data = self._json_object(response, what="create result")
        remote_id = self._require_id(data, response, "id", "Id")
        return RemoteRecord(remote_id=remote_id, fields=_from_sent(body), updated_at=None, raw=data)

    def update_record(self, remote_id: str, fields: dict) -> RemoteRecord:
        body = _to_salesforce(fields)
        self._request("PATCH", CONTACT, path_params={"id": remote_id}, json_body=body)  # 204, no body
        return RemoteRecord(remote_id=str(remote_id), fields=_from_sent(body), updated_at=None, raw={})

    def create_records(self, items: list[dict]) -> list[RemoteRecord | ProviderError]:
        """sObject Collections (at most 200, allOrNone false): one answer per record, in input order."""
        bodies = [{"attributes": {"type": "Contact"}, **_to_salesforce(f)} for f in items]
        return self._collection("POST", bodies)

    def update_records(self, items: list[tuple[str, dict]]) -> list[RemoteRecord | ProviderError]:
        bodies = [
            {"attributes": {"type": "Contact"}, "id": str(rid), **_to_salesforce(f)} for rid, f in items
        ]
        return self._collection("PATCH", bodies)

    def _collection(self, method: str, bodies: list[dict]) -> list[RemoteRecord | ProviderError]:
        response = self._request(method, COLLECTION, json_body={"allOrNone": False, "records": bodies})
        call = self.last_call
        try:
            answers = response.json()
        except ValueError:
            raise self._malformed("collection answer is not JSON", response) from None
        if not isinstance(answers, list) or len(answers) != len(bodies):
            raise self._malformed("collection answer does not list every record", response)
        out: list[RemoteRecord | ProviderError] = []
        for body, answer in zip(bodies, answers, strict=True):
            sent = {k: v for k, v in body.items() if k not in ("attributes", "id")}
            if isinstance(answer, dict) and answer.get("success"):
                rid = str(answer.get("id") or body.get("id"))
                out.append(RemoteRecord(remote_id=rid, fields=_from_sent(sent), updated_at=None, raw=answer))
            else:
                errors = (answer or {}).get("errors") if isinstance(answer, dict) else None
                out.append(self._item_error({"errors": errors or []}, call))
        return out

    def account_of(self, tokens: TokenSet) -> str | None:
        org = org_from_identity((tokens.extra or {}).get("id"))
        return f"org:{org}" if org else None

    def check_credentials(self) -> None:
        self._request("GET", QUERY, params={"q": "SELECT Id FROM Contact LIMIT 1"})

    def status(self) -> ProviderStatus:
        """Salesforce Trust for this org's instance (not a Statuspage)."""
        instance = str(self.credentials.get("instance") or self.default_instance)
        response = self._request(
            "GET", "/v1/instances/{instance}/status", path_params={"instance": instance}, authenticated=False
        )
        data = self._json_object(response, what="trust status")
        status = data.get("status")
        if not isinstance(status, str):
            raise self._malformed("trust status has no status", response)
        indicator = trust_indicator(status)
        return ProviderStatus(
            indicator=indicator, description=f"{data.get('key', instance)}: {status}", raw=data
        )


def _to_salesforce(fields: dict) -> dict:
    body = dict(fields)
    if "lineup_id" in body:
        body[LINEUP_FIELD] = body.pop("lineup_id")
    body.pop("Id", None)
    return body


def _from_sent(body: dict) -> dict:
    fields = dict(body)
    if LINEUP_FIELD in fields:
        fields["lineup_id"] = fields.pop(LINEUP_FIELD)
    return fields
