"""Each adapter: error bodies onto one category, flat fields to/from the nested shapes, paging, tokens, status."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from integrations.providers import ProviderError, get_client
from tests.providers import canned_fixture, canned_server_fixture, session_fixture  # noqa: F401

SF = "/services/data/v59.0"
WD = "/ccx/api/recruiting/v4/acme/prospects"

CREDENTIALS = {
    "hubspot": {"access_token": "hs-at", "refresh_token": "hs-rt"},
    "salesforce": {
        "access_token": "sf-at",
        "refresh_token": "sf-rt",
        "instance_url": "http://ignored.example",
    },
    "greenhouse": {"api_key": "gh-key"},
    "lever": {"access_token": "lv-at", "refresh_token": "lv-rt"},
    "workday": {"api_key": "wd-key", "tenant": "acme"},
    "pandadoc": {"api_key": "pd-key"},
    "clearbit": {"api_key": "cb-key"},
}


def client_for(provider, canned, session):
    return get_client(
        provider,
        base_url=canned.url,
        credentials=CREDENTIALS[provider],
        client_id="lineup-ops",
        client_secret="sandbox-client-secret",
        session=session,
    )


def _call(client, op):
    if op == "get":
        return client.get_record("42")
    if op == "create":
        return client.create_record({"email": "a@b.c"})
    if op == "refresh":
        return client.refresh_token()
    if op == "find":
        return client.find_person("a@b.c")
    raise AssertionError(op)


# provider, op, method, path, status, body, headers, category, field, existing_id, retry_after
ERROR_CASES = [
    # HubSpot
    (
        "hubspot",
        "get",
        "GET",
        "/crm/v3/objects/contacts/42",
        401,
        {
            "status": "error",
            "category": "EXPIRED_AUTHENTICATION",
            "message": "The OAuth token used to make this call expired 7 second(s) ago.",
        },
        {},
        "auth_expired",
        None,
        None,
        None,
    ),
    (
        "hubspot",
        "get",
        "GET",
        "/crm/v3/objects/contacts/42",
        429,
        {
            "status": "error",
            "message": "You have reached your secondly limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
        },
        {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000", "X-HubSpot-RateLimit-Remaining": "0"},
        "rate_limited",
        None,
        None,
        10.0,
    ),
    (
        "hubspot",
        "create",
        "POST",
        "/crm/v3/objects/contacts",
        409,
        {"status": "error", "category": "CONFLICT", "message": "Contact already exists. Existing ID: 123"},
        {},
        "duplicate",
        None,
        "123",
        None,
    ),
    (
        "hubspot",
        "create",
        "POST",
        "/crm/v3/objects/contacts",
        400,
        {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": "Property values were not valid",
            "errors": [{"message": "Email address a@b is invalid", "context": {"propertyName": ["email"]}}],
        },
        {},
        "validation",
        "email",
        None,
        None,
    ),
    (
        "hubspot",
        "create",
        "POST",
        "/crm/v3/objects/contacts",
        400,
        {"status": "error", "category": "VALIDATION_ERROR", "message": "Property lastname is required"},
        {},
        "missing_field",
        "lastname",
        None,
        None,
    ),
    (
        "hubspot",
        "get",
        "GET",
        "/crm/v3/objects/contacts/42",
        502,
        {"status": "error", "message": "Bad gateway"},
        {},
        "provider_5xx",
        None,
        None,
        None,
    ),
    (
        "hubspot",
        "refresh",
        "POST",
        "/oauth/v1/token",
        400,
        {"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"},
        {},
        "auth_refresh_failed",
        None,
        None,
        None,
    ),
    (
        "hubspot",
        "refresh",
        "POST",
        "/oauth/v1/token",
        400,
        {"status": "BAD_CLIENT_ID", "message": "unknown client"},
        {},
        "auth_invalid",
        None,
        None,
        None,
    ),
    # Salesforce
    (
        "salesforce",
        "get",
        "GET",
        f"{SF}/sobjects/Contact/42",
        401,
        [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
        {},
        "auth_expired",
        None,
        None,
        None,
    ),
    (
        "salesforce",
        "get",
        "GET",
        f"{SF}/sobjects/Contact/42",
        403,
        [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
        {"Sforce-Limit-Info": "api-usage=100000/100000"},
        "rate_limited",
        None,
        None,
        None,
    ),
    (
        "salesforce",
        "get",
        "GET",
        f"{SF}/sobjects/Contact/42",
        403,
        [{"message": "insufficient access rights", "errorCode": "INSUFFICIENT_ACCESS"}],
        {},
        "auth_invalid",
        None,
        None,
        None,
    ),
    (
        "salesforce",
        "create",
        "POST",
        f"{SF}/sobjects/Contact/",
        400,
        [
            {
                "message": "Required fields are missing: [LastName]",
                "errorCode": "REQUIRED_FIELD_MISSING",
                "fields": ["LastName"],
            }
        ],
        {},
        "missing_field",
        "LastName",
        None,
        None,
    ),
    (
        "salesforce",
        "create",
        "POST",
        f"{SF}/sobjects/Contact/",
        400,
        [
            {
                "message": "Email looks wrong",
                "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "fields": ["Email"],
            }
        ],
        {},
        "validation",
        "Email",
        None,
        None,
    ),
    (
        "salesforce",
        "create",
        "POST",
        f"{SF}/sobjects/Contact/",
        400,
        [
            {
                "message": "Use one of these records?",
                "errorCode": "DUPLICATES_DETECTED",
                "fields": [],
                "duplicateResult": {"matchResults": [{"matchRecords": [{"record": {"Id": "003XYZ"}}]}]},
            }
        ],
        {},
        "duplicate",
        None,
        "003XYZ",
        None,
    ),
    (
        "salesforce",
        "create",
        "POST",
        f"{SF}/sobjects/Contact/",
        400,
        [
            {
                "message": "duplicate value found: Lineup_Id__c duplicates value on record with id: 003ABC",
                "errorCode": "DUPLICATE_VALUE",
                "fields": ["Lineup_Id__c"],
            }
        ],
        {},
        "duplicate",
        "lineup_id",
        None,
        None,
    ),
    (
        "salesforce",
        "refresh",
        "POST",
        "/services/oauth2/token",
        400,
        {"error": "invalid_grant", "error_description": "expired access/refresh token"},
        {},
        "auth_refresh_failed",
        None,
        None,
        None,
    ),
    (
        "salesforce",
        "get",
        "GET",
        f"{SF}/sobjects/Contact/42",
        503,
        [{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}],
        {},
        "provider_5xx",
        None,
        None,
        None,
    ),
    # Greenhouse
    (
        "greenhouse",
        "get",
        "GET",
        "/v1/candidates/42",
        401,
        {"message": "Invalid Basic Auth credentials"},
        {},
        "auth_invalid",
        None,
        None,
        None,
    ),
    (
        "greenhouse",
        "get",
        "GET",
        "/v1/candidates/42",
        429,
        {"message": "Too many requests"},
        {"Retry-After": "<unix time in 30 s>", "X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0"},
        "rate_limited",
        None,
        None,
        "soon",
    ),
    (
        "greenhouse",
        "create",
        "POST",
        "/v1/candidates",
        422,
        {
            "message": "Validation error",
            "errors": [{"message": "Must be one of: candidate, prospect", "field": "type"}],
        },
        {},
        "validation",
        "type",
        None,
        None,
    ),
    (
        "greenhouse",
        "create",
        "POST",
        "/v1/candidates",
        422,
        {
            "message": "Validation error",
            "errors": [{"message": "Email address has already been taken", "field": "email_addresses"}],
        },
        {},
        "duplicate",
        "email",
        None,
        None,
    ),
    (
        "greenhouse",
        "create",
        "POST",
        "/v1/candidates",
        422,
        {"message": "Validation error", "errors": [{"message": "can't be blank", "field": "last_name"}]},
        {},
        "missing_field",
        "last_name",
        None,
        None,
    ),
    # Lever
    (
        "lever",
        "get",
        "GET",
        "/v1/opportunities/42",
        401,
        {"code": "Unauthorized", "message": "Expired access token"},
        {},
        "auth_expired",
        None,
        None,
        None,
    ),
    (
        "lever",
        "get",
        "GET",
        "/v1/opportunities/42",
        429,
        {"code": "TooManyRequests", "message": "Rate limit exceeded"},
        {},
        "rate_limited",
        None,
        None,
        None,
    ),
    (
        "lever",
        "create",
        "POST",
        "/v1/opportunities",
        400,
        {"code": "BadRequestError", "message": "name is required"},
        {},
        "missing_field",
        "name",
        None,
        None,
    ),
    (
        "lever",
        "create",
        "POST",
        "/v1/opportunities",
        400,
        {"code": "BadRequestError", "message": "headline is too long"},
        {},
        "validation",
        "headline",
        None,
        None,
    ),
    (
        "lever",
        "create",
        "POST",
        "/v1/opportunities",
        409,
        {"code": "Conflict", "message": "Opportunity already exists. Existing ID: 8b1f-22"},
        {},
        "duplicate",
        None,
        "8b1f-22",
        None,
    ),
    (
        "lever",
        "refresh",
        "POST",
        "/oauth/token",
        400,
        {"error": "invalid_grant", "error_description": "refresh token revoked"},
        {},
        "auth_refresh_failed",
        None,
        None,
        None,
    ),
    # Workday
    (
        "workday",
        "get",
        "GET",
        f"{WD}/42",
        401,
        {"error": "invalid api key"},
        {},
        "auth_invalid",
        None,
        None,
        None,
    ),
    (
        "workday",
        "get",
        "GET",
        f"{WD}/42",
        429,
        {"error": "too many requests"},
        {"Retry-After": "5"},
        "rate_limited",
        None,
        None,
        5.0,
    ),
    (
        "workday",
        "create",
        "POST",
        WD,
        400,
        {"error": "Validation failed", "errors": [{"error": "must be an email address", "field": "email"}]},
        {},
        "validation",
        "email",
        None,
        None,
    ),
    (
        "workday",
        "create",
        "POST",
        WD,
        400,
        {"error": "Validation failed", "errors": [{"error": "lastName is required", "field": "lastName"}]},
        {},
        "missing_field",
        "lastName",
        None,
        None,
    ),
    (
        "workday",
        "create",
        "POST",
        WD,
        409,
        {"error": "A prospect with this email already exists", "existingId": "P-9"},
        {},
        "duplicate",
        "email",
        "P-9",
        None,
    ),
    # PandaDoc
    (
        "pandadoc",
        "get",
        "GET",
        "/public/v1/documents/42",
        401,
        {"type": "authentication_error", "detail": "Authentication credentials were not provided."},
        {},
        "auth_invalid",
        None,
        None,
        None,
    ),
    (
        "pandadoc",
        "create",
        "POST",
        "/public/v1/documents",
        400,
        {"type": "request_error", "detail": {"name": ["This field is required."]}},
        {},
        "missing_field",
        "name",
        None,
        None,
    ),
    (
        "pandadoc",
        "create",
        "POST",
        "/public/v1/documents",
        400,
        {"type": "request_error", "detail": {"recipient_email": ["Enter a valid email address."]}},
        {},
        "validation",
        "recipient_email",
        None,
        None,
    ),
    (
        "pandadoc",
        "get",
        "GET",
        "/public/v1/documents/42",
        429,
        {"type": "request_error", "detail": "Request was throttled."},
        {"Retry-After": "12"},
        "rate_limited",
        None,
        None,
        12.0,
    ),
    # Clearbit
    (
        "clearbit",
        "find",
        "GET",
        "/v2/people/find",
        401,
        {"error": {"type": "auth_required", "message": "API key is invalid"}},
        {},
        "auth_invalid",
        None,
        None,
        None,
    ),
    (
        "clearbit",
        "find",
        "GET",
        "/v2/people/find",
        429,
        {"error": {"type": "rate_limit", "message": "slow down"}},
        {"Retry-After": "60"},
        "rate_limited",
        None,
        None,
        60.0,
    ),
    (
        "clearbit",
        "find",
        "GET",
        "/v2/people/find",
        500,
        {"error": {"type": "server_error"}},
        {},
        "provider_5xx",
        None,
        None,
        None,
    ),
]


@pytest.mark.parametrize(
    (
        "provider",
        "op",
        "method",
        "path",
        "status",
        "body",
        "headers",
        "category",
        "field",
        "existing_id",
        "retry_after",
    ),
    ERROR_CASES,
    ids=[f"{c[0]}-{c[4]}-{c[7]}-{i}" for i, c in enumerate(ERROR_CASES)],
)
def test_error_mapping(
    canned,
    session,
    provider,
    op,
    method,
    path,
    status,
    body,
    headers,
    category,
    field,
    existing_id,
    retry_after,
):
    # A Unix-timestamp Retry-After is computed when the test runs, not when it is collected.
    headers = {k: str(int(time.time()) + 30) if v == "<unix time in 30 s>" else v for k, v in headers.items()}
    canned.add(method, path, status, body, headers)
    client = client_for(provider, canned, session)
    with pytest.raises(ProviderError) as exc:
        _call(client, op)
    err = exc.value
    assert err.category == category, err
    assert err.http_status == status
    assert err.field == field
    assert err.existing_id == existing_id
    if retry_after == "soon":
        assert 25 <= err.retry_after <= 31
    else:
        assert err.retry_after == retry_after
    assert err.transient == (category in ("connection", "timeout", "provider_5xx", "rate_limited"))
    assert err.call is client.last_call and err.call.http_status == status
    assert "sandbox-client-secret" not in err.call.request_excerpt


def test_error_keeps_rate_limit_headers_on_call(canned, session):
    canned.add(
        "GET",
        f"{SF}/sobjects/Contact/42",
        403,
        [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
        {"Sforce-Limit-Info": "api-usage=100000/100000"},
    )
    client = client_for("salesforce", canned, session)
    with pytest.raises(ProviderError) as exc:
        client.get_record("42")
    assert exc.value.call.rate_limit == {"Sforce-Limit-Info": "api-usage=100000/100000"}


def test_long_retry_after_is_capped(canned, session):
    canned.add(
        "GET", "/v1/candidates/42", 429, {"message": "slow"}, {"Retry-After": str(int(time.time()) + 7200)}
    )
    client = client_for("greenhouse", canned, session)
    with pytest.raises(ProviderError) as exc:
        client.get_record("42")
    assert exc.value.retry_after == 900.0


# ------------------------------------------------------------------------------------------ HubSpot


def test_hubspot_records_and_paging(canned, session):
    contact = {
        "id": "101",
        "properties": {
            "email": "a@b.c",
            "firstname": "Ada",
            "lastname": "L",
            "lineup_id": "c-1",
            "hs_object_id": "101",
            "lastmodifieddate": "2025-01-02T03:04:05Z",
        },
        "updatedAt": "2025-01-02T03:04:05.000Z",
    }
    canned.add("POST", "/crm/v3/objects/contacts", 201, contact)
    canned.add(
        "GET", "/crm/v3/objects/contacts", 200, {"results": [contact], "paging": {"next": {"after": "101"}}}
    )
    canned.add("POST", "/crm/v3/objects/contacts/search", 200, {"total": 1, "results": [contact]})
    client = client_for("hubspot", canned, session)

    record = client.create_record({"email": "a@b.c", "firstname": "Ada", "lastname": "L", "lineup_id": "c-1"})
    assert canned.last().json() == {
        "properties": {"email": "a@b.c", "firstname": "Ada", "lastname": "L", "lineup_id": "c-1"}
    }
    assert canned.last().headers["Authorization"] == "Bearer hs-at"
    assert record.remote_id == "101"
    assert record.fields == {"email": "a@b.c", "firstname": "Ada", "lastname": "L", "lineup_id": "c-1"}
    assert record.updated_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

    page = client.list_records(limit=10, cursor="100")
    assert canned.last().query["after"] == ["100"] and canned.last().query["limit"] == ["10"]
    assert page.next_cursor == "101" and page.records[0].remote_id == "101"

    since = datetime(2025, 1, 1, tzinfo=UTC)
    page = client.list_records(updated_since=since)
    search = canned.last().json()
    assert search["filterGroups"][0]["filters"][0] == {
        "propertyName": "lastmodifieddate",
        "operator": "GTE",
        "value": str(int(since.timestamp() * 1000)),
    }
    assert page.next_cursor is None


def test_hubspot_exchange_code_and_authorize_url(canned, session):
    canned.add(
        "POST",
        "/oauth/v1/token",
        200,
        {"access_token": "A", "refresh_token": "R", "expires_in": 1800, "token_type": "bearer"},
    )
    client = client_for("hubspot", canned, session)
    tokens = client.exchange_code(code="the-code", redirect_uri="http://console/cb")
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_in) == ("A", "R", 1800)
    form = canned.last().form()
    assert form == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": "http://console/cb",
        "client_id": "lineup-ops",
        "client_secret": "sandbox-client-secret",
    }
    assert client.credentials["access_token"] == "A"
    url = client.authorize_url(redirect_uri="http://console/cb", state="s1", account="acme")
    assert url.startswith(f"{canned.url}/oauth/authorize?") and "state=s1" in url and "account=acme" in url


# ------------------------------------------------------------------------------------------ Salesforce


def test_salesforce_token_has_instance_url_and_no_expiry(canned, session):
    canned.add(
        "POST",
        "/services/oauth2/token",
        200,
        {
            "access_token": "00D!new",
            "instance_url": "https://acme.my.salesforce.com",
            "id": "https://login/id/1",
            "token_type": "Bearer",
            "issued_at": "1700000000000",
            "signature": "sig",
        },
    )
    client = client_for("salesforce", canned, session)
    tokens = client.refresh_token()
    assert tokens.access_token == "00D!new"
    assert tokens.expires_in is None
    assert tokens.extra["instance_url"] == "https://acme.my.salesforce.com"
    assert tokens.refresh_token == "sf-rt"  # no rotation: the old one stays valid
    # API calls still go to base_url
    canned.add(
        "GET",
        f"{SF}/sobjects/Contact/003A",
        200,
        {"attributes": {"type": "Contact"}, "Id": "003A", "LastName": "L"},
    )
    client.get_record("003A")
    assert canned.last().headers["Authorization"] == "Bearer 00D!new"


def test_salesforce_records_and_paging(canned, session):
    canned.add("POST", f"{SF}/sobjects/Contact/", 201, {"id": "003A", "success": True, "errors": []})
    canned.add("PATCH", f"{SF}/sobjects/Contact/003A", 204, b"")
    row = {
        "attributes": {"type": "Contact"},
        "Id": "003A",
        "Email": "a@b.c",
        "LastName": "L",
        "Lineup_Id__c": "c-1",
        "LastModifiedDate": "2025-01-02T03:04:05.000+0000",
    }
    canned.add(
        "GET",
        f"{SF}/query/",
        200,
        {"totalSize": 3, "done": False, "nextRecordsUrl": f"{SF}/query/01gX-2000", "records": [row]},
    )
    canned.add(
        "GET",
        f"{SF}/query/01gX-2000",
        200,
        {"totalSize": 3, "done": True, "records": [{"attributes": {}, "Id": "003B"}]},
    )
    canned.add("GET", f"{SF}/sobjects/Contact/003B", 200, {**row, "Id": "003B"})
    canned.add(
        "GET",
        f"{SF}/sobjects/Contact/updated/",
        200,
        {"ids": ["003A", "003B"], "latestDateCovered": "2025-01-02T03:00:00.000+0000"},
    )
    canned.add("GET", f"{SF}/sobjects/Contact/003A", 200, row)
    client = client_for("salesforce", canned, session)

    created = client.create_record({"LastName": "L", "Email": "a@b.c", "lineup_id": "c-1"})
    assert canned.last().json() == {"LastName": "L", "Email": "a@b.c", "Lineup_Id__c": "c-1"}
    assert created.remote_id == "003A" and created.fields["lineup_id"] == "c-1"
    updated = client.update_record("003A", {"Title": "CTO"})
    assert updated.remote_id == "003A" and canned.last().method == "PATCH"

    page = client.list_records()
    assert page.records[0].fields == {"Email": "a@b.c", "LastName": "L", "lineup_id": "c-1"}
    assert page.records[0].updated_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert page.next_cursor == f"{SF}/query/01gX-2000"
    page = client.list_records(cursor=page.next_cursor)
    assert page.next_cursor is None and page.records[0].remote_id == "003B"  # Id-only row completed by a GET
    assert page.records[0].fields["lineup_id"] == "c-1"

    page = client.list_records(updated_since=datetime.now(UTC), limit=1)
    assert [r.remote_id for r in page.records] == ["003A"]
    assert page.next_cursor and page.next_cursor.startswith("updated|")
    page = client.list_records(cursor=page.next_cursor, limit=1)
    assert [r.remote_id for r in page.records] == ["003B"] and page.next_cursor is None


def test_salesforce_trust_status(canned, session):
    canned.add("GET", "/v1/instances/NA1/status", 200, {"key": "NA1", "status": "MAJOR_INCIDENT_CORE"})
    status = client_for("salesforce", canned, session).status()
    assert status.indicator == "major" and "MAJOR_INCIDENT_CORE" in status.description
    assert "Authorization" not in canned.last().headers


# ------------------------------------------------------------------------------------------ Greenhouse


def test_greenhouse_flattening_and_link_paging(canned, session):
    cand = {
        "id": 7,
        "first_name": "Ada",
        "last_name": "L",
        "company": "X",
        "title": "Eng",
        "email_addresses": [{"value": "a@b.c", "type": "personal"}],
        "custom_fields": {"lineup_id": "c-7"},
        "updated_at": "2025-01-02T03:04:05.000Z",
    }
    canned.add("POST", "/v1/candidates", 201, cand)
    canned.add(
        "GET",
        "/v1/candidates",
        200,
        [cand],
        {
            "Link": f'<{canned.url}/v1/candidates?page=3&per_page=1>; rel="next", <{canned.url}/v1/candidates?page=9>; rel="last"'
        },
    )
    client = client_for("greenhouse", canned, session)
    record = client.create_record(
        {"first_name": "Ada", "last_name": "L", "email": "a@b.c", "lineup_id": "c-7"}
    )
    sent = canned.last()
    assert sent.json() == {
        "first_name": "Ada",
        "last_name": "L",
        "email_addresses": [{"value": "a@b.c", "type": "personal"}],
        "custom_fields": {"lineup_id": "c-7"},
    }
    assert sent.headers["Authorization"] == "Basic Z2gta2V5Og=="  # base64("gh-key:")
    assert sent.headers.get("On-Behalf-Of")
    assert record.remote_id == "7"
    assert record.fields == {
        "first_name": "Ada",
        "last_name": "L",
        "company": "X",
        "title": "Eng",
        "email": "a@b.c",
        "lineup_id": "c-7",
    }
    page = client.list_records(updated_since=datetime(2025, 1, 1, tzinfo=UTC), cursor="2", limit=1)
    assert canned.last().query == {
        "per_page": ["1"],
        "page": ["2"],
        "updated_after": ["2025-01-01T00:00:00Z"],
    }
    assert page.next_cursor == "3"


# ------------------------------------------------------------------------------------------ Lever


def test_lever_flattening_and_paging(canned, session):
    opp = {
        "id": "opp-1",
        "name": "Ada L",
        "headline": "Eng",
        "emails": ["a@b.c", "b@c.d"],
        "tags": ["x", "lineup:c-9"],
        "updatedAt": 1735787045000,
    }
    canned.add("POST", "/v1/opportunities", 201, {"data": opp})
    canned.add("PUT", "/v1/opportunities/opp-1", 200, {"data": opp})
    canned.add("GET", "/v1/opportunities", 200, {"data": [opp], "hasNext": True, "next": "tok-2"})
    client = client_for("lever", canned, session)
    record = client.create_record({"name": "Ada L", "email": "a@b.c", "lineup_id": "c-9"})
    assert canned.last().json() == {"name": "Ada L", "emails": ["a@b.c"], "tags": ["lineup:c-9"]}
    assert canned.last().query.get("perform_as")
    assert record.fields == {"name": "Ada L", "headline": "Eng", "email": "a@b.c", "lineup_id": "c-9"}
    assert record.updated_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    client.update_record("opp-1", {"headline": "CTO"})
    assert canned.last().method == "PUT"
    page = client.list_records(cursor="tok-1", updated_since=datetime(2025, 1, 1, tzinfo=UTC))
    assert canned.last().query["offset"] == ["tok-1"] and canned.last().query["updated_at_start"] == [
        "1735689600000"
    ]
    assert page.next_cursor == "tok-2"


def test_lever_token_refresh(canned, session):
    canned.add(
        "POST", "/oauth/token", 200, {"access_token": "new", "refresh_token": "rot", "expires_in": 3600}
    )
    tokens = client_for("lever", canned, session).refresh_token()
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_in) == ("new", "rot", 3600)


# ------------------------------------------------------------------------------------------ Workday, PandaDoc, Clearbit


def test_workday_paths_flattening_and_offset_paging(canned, session):
    prospect = {
        "id": "P-1",
        "firstName": "Ada",
        "lastName": "L",
        "email": "a@b.c",
        "externalId": "c-3",
        "updatedOn": "2025-01-02T03:04:05.000Z",
    }
    canned.add("POST", WD, 201, prospect)
    canned.add("GET", WD, 200, {"total": 3, "data": [prospect, prospect]})
    client = client_for("workday", canned, session)
    record = client.create_record({"firstName": "Ada", "lastName": "L", "lineup_id": "c-3"})
    assert canned.last().json() == {"firstName": "Ada", "lastName": "L", "externalId": "c-3"}
    assert canned.last().headers["Authorization"] == "Bearer wd-key"
    assert record.fields == {"firstName": "Ada", "lastName": "L", "email": "a@b.c", "lineup_id": "c-3"}
    assert record.updated_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    page = client.list_records(limit=2)
    assert page.next_cursor == "2"
    canned.reset()
    canned.add("GET", WD, 200, {"total": 3, "data": [prospect]})
    assert client.list_records(cursor="2", limit=2).next_cursor is None


def test_workday_without_tenant_is_auth_invalid(canned, session):
    client = get_client("workday", base_url=canned.url, credentials={"api_key": "k"}, session=session)
    with pytest.raises(ProviderError) as exc:
        client.get_record("1")
    assert exc.value.category == "auth_invalid"


def test_pandadoc_flattening_and_paging(canned, session):
    doc = {
        "id": "d-1",
        "name": "Offer",
        "status": "document.draft",
        "recipient_email": "a@b.c",
        "metadata": {"lineup_id": "c-4"},
        "date_modified": "2025-01-02T03:04:05Z",
    }
    canned.add("POST", "/public/v1/documents", 201, doc)
    canned.add("GET", "/public/v1/documents", 200, {"results": [doc, doc]})
    client = client_for("pandadoc", canned, session)
    record = client.create_record({"name": "Offer", "recipient_email": "a@b.c", "lineup_id": "c-4"})
    assert canned.last().json() == {
        "name": "Offer",
        "recipients": [{"email": "a@b.c", "role": "", "recipient_type": "signer"}],
        "metadata": {"lineup_id": "c-4"},
    }
    assert canned.last().headers["Authorization"] == "API-Key pd-key"
    assert record.fields == {
        "name": "Offer",
        "status": "document.draft",
        "recipient_email": "a@b.c",
        "lineup_id": "c-4",
    }
    assert client.list_records(limit=2).next_cursor == "2"
    assert client.list_records(limit=5).next_cursor is None


def test_pandadoc_find_by_external_id_filters_by_metadata_and_refuses_a_malformed_list(canned, session):
    doc = {"id": "d-1", "name": "Offer", "metadata": {"lineup_id": "c-4"}}
    canned.add("GET", "/public/v1/documents", 200, {"results": [doc]})
    client = client_for("pandadoc", canned, session)
    assert client.find_by_external_id("c-4").remote_id == "d-1"
    assert canned.last().query["metadata_lineup_id"] == ["c-4"]
    canned.reset()
    canned.add("GET", "/public/v1/documents", 200, {"documents": []})
    with pytest.raises(ProviderError) as exc:
        client.find_by_external_id("c-4")
    assert exc.value.category == "unknown" and "malformed response" in exc.value.message


def test_pandadoc_find_by_external_id_trusts_the_filter_for_a_summary_without_metadata(canned, session):
    """PandaDoc's list gives summaries; one without metadata is the filter's answer. One showing another
    lineup_id is not ours (the server ignored the filter), and nothing is adopted."""
    canned.add("GET", "/public/v1/documents", 200, {"results": [{"id": "d-2", "name": "Offer"}]})
    client = client_for("pandadoc", canned, session)
    found = client.find_by_external_id("c-9")
    assert found.remote_id == "d-2" and found.fields["lineup_id"] == "c-9"
    canned.reset()
    canned.add(
        "GET", "/public/v1/documents", 200, {"results": [{"id": "d-3", "metadata": {"lineup_id": "x"}}]}
    )
    assert client.find_by_external_id("c-9") is None


def test_clearbit_find_person(canned, session):
    person = {
        "id": "p-1",
        "email": "a@b.c",
        "name": {"fullName": "Ada Lovelace", "givenName": "Ada"},
        "employment": {"name": "Analytical", "title": "Programmer"},
    }
    canned.add("GET", "/v2/people/find", 200, person)
    client = client_for("clearbit", canned, session)
    record = client.find_person("a@b.c")
    assert canned.last().query == {"email": ["a@b.c"]}
    assert record.fields == {
        "email": "a@b.c",
        "name": "Ada Lovelace",
        "company": "Analytical",
        "title": "Programmer",
    }
    canned.reset()
    canned.add("GET", "/v2/people/find", 202, {"error": {"type": "queued"}})
    assert client.find_person("a@b.c") is None and client.pending
    canned.reset()
    canned.add("GET", "/v2/people/find", 404, {"error": {"type": "unknown_record"}})
    assert client.find_person("a@b.c") is None and not client.pending


@pytest.mark.parametrize("provider", ["hubspot", "greenhouse", "lever", "pandadoc"])
def test_statuspage_status(canned, session, provider):
    canned.add(
        "GET",
        "/api/v2/status.json",
        200,
        {"page": {"id": "x"}, "status": {"indicator": "major", "description": "Major Service Outage"}},
    )
    status = client_for(provider, canned, session).status()
    assert (status.indicator, status.description) == ("major", "Major Service Outage")


def test_check_credentials_raises_typed_error(canned, session):
    canned.add("GET", "/v1/candidates", 401, {"message": "Invalid Basic Auth credentials"})
    with pytest.raises(ProviderError) as exc:
        client_for("greenhouse", canned, session).check_credentials()
    assert exc.value.category == "auth_invalid"
