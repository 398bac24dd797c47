"""The base client: Retry-After, redaction, timeouts, connection errors, malformed answers, call records."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from integrations.access.redaction import redact_text
from integrations.providers import (
    CLIENTS,
    ProviderError,
    UnknownProvider,
    UnsupportedOperation,
    get_client,
    parse_retry_after,
    shared_session,
)
from integrations.providers.base import parse_timestamp
from tests.providers import canned_fixture, canned_server_fixture, session_fixture  # noqa: F401

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


# ------------------------------------------------------------------------------------------ Retry-After


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-5", 0.0),  # negative -> 0
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),  # HTTP date
        (format_datetime(NOW - timedelta(seconds=90), usegmt=True), 0.0),  # date in the past
        (str(int((NOW + timedelta(seconds=7)).timestamp())), 7.0),  # Greenhouse: Unix timestamp
        (str(int((NOW - timedelta(seconds=7)).timestamp())), 0.0),  # timestamp already passed
        ("86400", 900.0),  # capped
        (format_datetime(NOW + timedelta(days=2), usegmt=True), 900.0),
        (str(int((NOW + timedelta(hours=3)).timestamp())), 900.0),
        ("soon", None),
        ("", None),
        ("nan", None),
        ("inf", None),
        (None, None),
    ],
)
def test_parse_retry_after_forms(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_custom_cap():
    assert parse_retry_after("600", now=NOW, cap=60) == 60.0


def test_parse_timestamp_shapes():
    assert parse_timestamp("2024-01-02T03:04:05Z") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_timestamp("2024-01-02T03:04:05.000+0000") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_timestamp(1704164645000) == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_timestamp("garbage") is None
    assert parse_timestamp(None) is None


# ------------------------------------------------------------------------------------------ redaction


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('{"access_token": "at-123", "refresh_token": "rt-456"}', "at-123"),
        ('{"access_token": "at-123", "refresh_token": "rt-456"}', "rt-456"),
        ('{"api_key":"k-1","password":"hunter2"}', "hunter2"),
        ('{"client_secret": "s3c\\"r3t-value"}', "r3t-value"),
        ("grant_type=refresh_token&refresh_token=rt-789&client_secret=cs-1&client_id=lineup-ops", "rt-789"),
        ("grant_type=authorization_code&code=authcode-1&redirect_uri=x", "authcode-1"),
        ("https://api.example.com/x?hapikey=1&api_key=k-2&email=a@b.c", "k-2"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig\r\nAccept: */*", "eyJhbGciOi"),
        ("{'Authorization': 'Basic dXNlcjpwYXNz', 'Accept': 'x'}", "dXNlcjpwYXNz"),
        ("failed with token Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("Authorization: API-Key pd-key-12345", "pd-key-12345"),
    ],
)
def test_redact_text_masks_secrets(text, secret):
    out = redact_text(text)
    assert secret not in out
    assert "[REDACTED]" in out


def test_redact_text_keeps_harmless_content():
    text = '{"email": "a@b.c", "message": "The OAuth token used to make this call expired 7 second(s) ago."}'
    assert redact_text(text) == text
    assert (
        redact_text("client_id=lineup-ops&grant_type=refresh_token")
        == "client_id=lineup-ops&grant_type=refresh_token"
    )


def test_get_client_covers_the_catalogue(canned):
    from integrations.catalog import PROVIDERS

    assert set(CLIENTS) == set(PROVIDERS)
    for slug in PROVIDERS:
        client = get_client(slug, base_url=canned.url, credentials={})
        assert client.provider == slug


def test_get_client_unknown_provider():
    with pytest.raises(KeyError):
        get_client("myspace", base_url="http://x")
    with pytest.raises(ValueError):
        get_client("myspace", base_url="http://x")
    assert issubclass(UnknownProvider, KeyError)


def test_shared_session_is_reused_when_none_given():
    a = get_client("greenhouse", base_url="http://127.0.0.1:1", credentials={"api_key": "k"})
    b = get_client("hubspot", base_url="http://127.0.0.1:1", credentials={"access_token": "t"})
    assert a.session is b.session is shared_session()


def test_api_key_providers_cannot_refresh(canned):
    client = get_client("greenhouse", base_url=canned.url, credentials={"api_key": "k"})
    with pytest.raises(ProviderError) as exc:
        client.refresh_token()
    assert exc.value.category == "auth_invalid"
    assert canned.requests == []


def test_clearbit_has_no_record_writes(canned):
    client = get_client("clearbit", base_url=canned.url, credentials={"api_key": "k"})
    with pytest.raises(UnsupportedOperation):
        client.create_record({"email": "a@b.c"})


# ------------------------------------------------------------------------------------------ transport failures


def test_timeout_maps_to_timeout(canned, session):
    canned.add("GET", "/v1/candidates", body=[], delay=1.0)
    client = get_client(
        "greenhouse", base_url=canned.url, credentials={"api_key": "k"}, timeout=0.2, session=session
    )
    with pytest.raises(ProviderError) as exc:
        client.list_records()
    assert exc.value.category == "timeout"
    assert exc.value.transient
    assert isinstance(exc.value.__cause__, requests.exceptions.Timeout)
    assert client.last_call is exc.value.call
    assert client.last_call.http_status is None


def test_connection_closed_without_answer_maps_to_connection(canned, session):
    canned.add("GET", "/v1/candidates", action="close")
    client = get_client("greenhouse", base_url=canned.url, credentials={"api_key": "k"}, session=session)
    with pytest.raises(ProviderError) as exc:
        client.list_records()
    assert exc.value.category == "connection"
    assert exc.value.transient


def test_nothing_listening_maps_to_connection(session):
    client = get_client(
        "workday", base_url="http://127.0.0.1:9", credentials={"api_key": "k", "tenant": "t"}, session=session
    )
    with pytest.raises(ProviderError) as exc:
        client.check_credentials()
    assert exc.value.category == "connection"


def test_non_json_answer_is_unknown_not_a_crash(canned, session):
    canned.add("GET", "/crm/v3/objects/contacts/7", body="<html>gateway says hi</html>")
    client = get_client("hubspot", base_url=canned.url, credentials={"access_token": "t"}, session=session)
    with pytest.raises(ProviderError) as exc:
        client.get_record("7")
    assert exc.value.category == "unknown"
    assert "not JSON" in exc.value.message
    assert not exc.value.transient


def test_record_without_id_is_unknown(canned, session):
    canned.add("POST", "/crm/v3/objects/contacts", 201, {"properties": {"email": "a@b.c"}})
    client = get_client("hubspot", base_url=canned.url, credentials={"access_token": "t"}, session=session)
    with pytest.raises(ProviderError) as exc:
        client.create_record({"email": "a@b.c"})
    assert exc.value.category == "unknown"
    assert "no id" in exc.value.message


def test_html_503_is_provider_5xx(canned, session):
    canned.add("GET", "/v1/candidates/1", 503, "<html>Service Unavailable</html>", {"Retry-After": "30"})
    client = get_client("greenhouse", base_url=canned.url, credentials={"api_key": "k"}, session=session)
    with pytest.raises(ProviderError) as exc:
        client.get_record("1")
    assert exc.value.category == "provider_5xx"
    assert exc.value.retry_after == 30.0


# ------------------------------------------------------------------------------------------ call records and logs


def test_call_info_is_redacted_and_keeps_rate_limit_headers(canned, session, caplog):
    canned.add(
        "POST",
        "/oauth/v1/token",
        200,
        {"access_token": "NEW-ACCESS-SECRET", "refresh_token": "NEW-REFRESH-SECRET", "expires_in": 1800},
        {"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "99", "X-Other": "1"},
    )
    client = get_client(
        "hubspot",
        base_url=canned.url,
        credentials={"access_token": "OLD-ACCESS-SECRET", "refresh_token": "OLD-REFRESH-SECRET"},
        client_id="lineup-ops",
        client_secret="APP-SECRET",
        session=session,
    )
    with caplog.at_level(logging.DEBUG, logger="integrations.providers"):
        tokens = client.refresh_token()
    assert tokens.access_token == "NEW-ACCESS-SECRET"
    call = client.last_call
    assert call is client.calls[-1]
    assert (call.method, call.endpoint, call.http_status) == ("POST", "/oauth/v1/token", 200)
    assert call.rate_limit == {"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "99"}
    dumped = f"{call.url} {call.request_excerpt} {call.response_excerpt} {caplog.text}"
    for secret in ("NEW-ACCESS-SECRET", "NEW-REFRESH-SECRET", "OLD-REFRESH-SECRET", "APP-SECRET"):
        assert secret not in dumped
    assert "grant_type=refresh_token" in call.request_excerpt
    assert caplog.records, "a call is logged"
    # the request itself did carry the real values
    assert canned.last().form()["refresh_token"] == "OLD-REFRESH-SECRET"


def test_excerpts_are_truncated(canned, session):
    canned.add("GET", "/v1/candidates/1", 200, {"id": 1, "first_name": "x" * 5000, "last_name": "y"})
    client = get_client("greenhouse", base_url=canned.url, credentials={"api_key": "k"}, session=session)
    client.get_record("1")
    assert len(client.last_call.response_excerpt) <= 2000


def test_bearer_header_never_in_logs(canned, session, caplog):
    canned.add(
        "GET", "/crm/v3/objects/contacts", 401, {"status": "error", "category": "INVALID_AUTHENTICATION"}
    )
    client = get_client(
        "hubspot", base_url=canned.url, credentials={"access_token": "SECRET-AT-1"}, session=session
    )
    with caplog.at_level(logging.DEBUG, logger="integrations.providers"), pytest.raises(ProviderError):
        client.check_credentials()
    assert "SECRET-AT-1" not in caplog.text
    assert canned.last().headers["Authorization"] == "Bearer SECRET-AT-1"


def test_query_secrets_are_masked_in_call_url(canned, session):
    canned.add("GET", "/v2/people/find", 404, {"error": {"type": "unknown_record"}})
    client = get_client("clearbit", base_url=canned.url, credentials={"api_key": "k"}, session=session)
    client._request(
        "GET", "/v2/people/find", params={"email": "a@b.c", "api_key": "LEAK"}, ok_statuses=(404,)
    )
    assert "LEAK" not in client.last_call.url
    assert "email=a%40b.c" in client.last_call.url
