"""The real clients against the sandbox provider server: records, tokens and every error category.

The `sandbox` fixture comes from tests.support.sandbox, which the root conftest already loads.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.catalog import PROVIDERS
from integrations.providers import ProviderError, get_client, get_client_class
from tests.providers import canned_fixture, canned_server_fixture  # noqa: F401

ACCOUNT = "acme"
CLIENT_ID, CLIENT_SECRET = "lineup-ops", "sandbox-client-secret"
OAUTH = [slug for slug, info in PROVIDERS.items() if info.auth_type == "oauth2"]
API_KEY = [slug for slug, info in PROVIDERS.items() if info.auth_type == "api_key"]
RECORD_PROVIDERS = ["hubspot", "salesforce", "greenhouse", "lever", "workday", "pandadoc"]
EMAIL_FIELD = {
    "hubspot": "email",
    "salesforce": "Email",
    "greenhouse": "email",
    "lever": "email",
    "workday": "email",
    "pandadoc": "recipient_email",
}
REQUIRED_FIELD = {
    "salesforce": "LastName",
    "greenhouse": "last_name",
    "lever": "name",
    "workday": "lastName",
    "pandadoc": "name",
}
DEDUPES = [
    "hubspot",
    "salesforce",
    "greenhouse",
    "lever",
    "workday",
]  # PandaDoc allows many docs per recipient


def sample(provider: str, email: str | None = None, lineup_id: str | None = None) -> dict:
    email = email or f"{uuid.uuid4().hex[:8]}@example.com"
    lineup_id = lineup_id or f"lu-{uuid.uuid4().hex[:6]}"
    return {
        "hubspot": {
            "email": email,
            "firstname": "Ada",
            "lastname": "Lovelace",
            "company": "AE",
            "lineup_id": lineup_id,
        },
        "salesforce": {"Email": email, "FirstName": "Ada", "LastName": "Lovelace", "lineup_id": lineup_id},
        "greenhouse": {"first_name": "Ada", "last_name": "Lovelace", "email": email, "lineup_id": lineup_id},
        "lever": {"name": "Ada Lovelace", "headline": "Engineer", "email": email, "lineup_id": lineup_id},
        "workday": {"firstName": "Ada", "lastName": "Lovelace", "email": email, "lineup_id": lineup_id},
        "pandadoc": {"name": "Offer letter", "recipient_email": email, "lineup_id": lineup_id},
    }[provider]


CHANGE = {
    "hubspot": {"jobtitle": "CTO"},
    "salesforce": {"Title": "CTO"},
    "greenhouse": {"title": "CTO"},
    "lever": {"headline": "CTO"},
    "workday": {"firstName": "Augusta"},
    "pandadoc": {"name": "Offer letter v2"},
}


def make_client(sandbox, provider, account=ACCOUNT, **kw):
    return get_client(
        provider,
        base_url=sandbox.base_url(provider),
        credentials=sandbox.credentials(provider, account),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        timeout=kw.pop("timeout", 5.0),
        **kw,
    )


def raises(category, fn, *args, **kwargs) -> ProviderError:
    with pytest.raises(ProviderError) as exc:
        fn(*args, **kwargs)
    assert exc.value.category == category, exc.value
    return exc.value


# ------------------------------------------------------------------------------------------ records


@pytest.mark.parametrize("provider", RECORD_PROVIDERS)
def test_create_get_update_list(sandbox, provider):
    client = make_client(sandbox, provider)
    fields = sample(provider)
    created = client.create_record(fields)
    assert created.remote_id
    assert created.fields["lineup_id"] == fields["lineup_id"]

    got = client.get_record(created.remote_id)
    for name, value in fields.items():
        assert got.fields.get(name) == value, (name, got.fields)
    assert got.updated_at is not None

    updated = client.update_record(created.remote_id, CHANGE[provider])
    assert updated.remote_id == created.remote_id
    after = client.get_record(created.remote_id)
    for name, value in CHANGE[provider].items():
        assert after.fields.get(name) == value

    # what the provider stored, seen through the control API, matches the flat fields we sent
    (stored,) = [r for r in sandbox.records(provider, ACCOUNT) if r["id"] == created.remote_id]
    assert stored["fields"].get("lineup_id", stored["fields"].get("Lineup_Id__c")) == fields["lineup_id"]
    assert stored["fields"][EMAIL_FIELD[provider]] == fields[EMAIL_FIELD[provider]]

    page = client.list_records(limit=50)
    assert created.remote_id in [r.remote_id for r in page.records]
    since = client.list_records(updated_since=datetime.now(UTC) - timedelta(minutes=5))
    assert created.remote_id in [r.remote_id for r in since.records]
    later = client.list_records(updated_since=datetime.now(UTC) + timedelta(minutes=5))
    assert created.remote_id not in [r.remote_id for r in later.records]


@pytest.mark.parametrize("provider", RECORD_PROVIDERS)
def test_paging_walks_every_record(sandbox, provider):
    client = make_client(sandbox, provider)
    ids = {client.create_record(sample(provider)).remote_id for _ in range(5)}
    seen, cursor, pages = [], None, 0
    while True:
        page = client.list_records(cursor=cursor, limit=2)
        seen.extend(r.remote_id for r in page.records)
        pages += 1
        cursor = page.next_cursor
        if not cursor or pages > 10:
            break
    assert set(seen) == ids and len(seen) == len(ids)
    if provider != "salesforce":  # Salesforce batches are at least 200 rows
        assert pages >= 3


def test_accounts_are_isolated(sandbox):
    acme = make_client(sandbox, "greenhouse", "acme")
    globex = make_client(sandbox, "greenhouse", "globex")
    record = acme.create_record(sample("greenhouse"))
    assert globex.list_records().records == []
    raises("unknown", globex.get_record, record.remote_id)  # 404: not this account's record


def test_clearbit_find_person(sandbox):
    sandbox.create_record(
        "clearbit",
        ACCOUNT,
        {"email": "ada@example.com", "name": "Ada Lovelace", "company": "Analytical", "title": "Programmer"},
    )
    client = make_client(sandbox, "clearbit")
    person = client.find_person("ada@example.com")
    assert person is not None
    assert person.fields == {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "company": "Analytical",
        "title": "Programmer",
    }
    assert client.find_person("nobody@example.com") is None
    err = raises("validation", client.find_person, "not-an-email")
    assert err.http_status == 422


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_check_credentials(sandbox, provider):
    make_client(sandbox, provider).check_credentials()
    bad = get_client(
        provider,
        base_url=sandbox.base_url(provider),
        credentials={"access_token": "nope", "api_key": "nope", "tenant": ACCOUNT},
    )
    # an unknown bearer token may be refreshable (auth_expired); a refused API key needs a person (auth_invalid)
    err = raises("auth_invalid" if provider in API_KEY else "auth_expired", bad.check_credentials)
    assert err.http_status == 401


# ------------------------------------------------------------------------------------------ tokens


@pytest.mark.parametrize("provider", OAUTH)
def test_refresh_then_expired_then_revoked(sandbox, provider):
    client = make_client(sandbox, provider)
    old_access = client.credentials["access_token"]
    tokens = client.refresh_token()
    assert tokens.access_token and tokens.access_token != old_access
    assert tokens.refresh_token
    if provider == "salesforce":
        assert tokens.expires_in is None
        assert tokens.extra["instance_url"] == sandbox.base_url("salesforce")
    else:
        assert tokens.expires_in and tokens.expires_in > 0
    client.check_credentials()  # the new token works

    sandbox.control(provider, expire_tokens=True)
    err = raises("auth_expired", client.check_credentials)
    assert err.http_status == 401
    client.refresh_token()
    client.check_credentials()

    sandbox.control(provider, revoke_refresh_tokens=True)
    raises("auth_refresh_failed", client.refresh_token)


@pytest.mark.parametrize("provider", OAUTH)
def test_wrong_app_secret_is_auth_invalid(sandbox, provider):
    client = make_client(sandbox, provider)
    client.client_secret = "wrong"
    raises("auth_invalid", client.refresh_token)


@pytest.mark.parametrize("provider", API_KEY)
def test_api_keys_stop_working(sandbox, provider):
    client = make_client(sandbox, provider)
    client.check_credentials()
    sandbox.control(provider, expire_tokens=True)
    raises("auth_invalid", client.check_credentials)
    raises("auth_invalid", client.refresh_token)  # nothing to refresh with an API key


@pytest.mark.parametrize("provider", OAUTH)
def test_consent_and_code_exchange(sandbox, provider):
    client = get_client(
        provider,
        base_url=sandbox.base_url(provider),
        credentials={},
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    redirect_uri = "http://console.example/oauth/callback"
    url = client.authorize_url(redirect_uri=redirect_uri, state="st-1", account="initech")
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and CLIENT_ID in page.text
    grant = requests.post(
        url, data={"account": "initech", "decision": "grant"}, allow_redirects=False, timeout=5
    )
    assert grant.status_code == 302
    query = parse_qs(urlsplit(grant.headers["Location"]).query)
    assert query["state"] == ["st-1"]
    tokens = client.exchange_code(code=query["code"][0], redirect_uri=redirect_uri)
    assert tokens.access_token and tokens.refresh_token
    client.check_credentials()
    # a code works once
    raises("auth_invalid", client.exchange_code, code=query["code"][0], redirect_uri=redirect_uri)


# ------------------------------------------------------------------------------------------ quota


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_rate_limited(sandbox, provider):
    client = make_client(sandbox, provider)
    sandbox.control(provider, rate_limit=2, window=3600)
    client.check_credentials()
    client.check_credentials()
    err = raises("rate_limited", client.check_credentials)
    assert err.transient
    if provider == "salesforce":
        assert err.http_status == 403 and err.retry_after is None
    elif provider == "lever":
        assert err.http_status == 429 and err.retry_after is None  # Lever sends no Retry-After
    else:
        assert err.http_status == 429
        assert (
            0 < err.retry_after <= 900
        )  # seconds, Unix timestamp (Greenhouse) or interval (HubSpot), capped
    assert err.call.rate_limit, "the provider's rate-limit headers are kept for the sync log"


# ------------------------------------------------------------------------------------------ write errors


@pytest.mark.parametrize("provider", RECORD_PROVIDERS)
def test_rejected_value_is_validation_with_field(sandbox, provider):
    client = make_client(sandbox, provider)
    field = EMAIL_FIELD[provider]
    sandbox.control(provider, reject={"field": field, "contains": "@bad"})
    err = raises("validation", client.create_record, sample(provider, email="x@bad.example"))
    assert err.field == field
    assert err.http_status in (400, 422)
    assert not err.transient
    fields = sample(provider)
    del fields[field]
    err = raises("missing_field", client.create_record, fields)
    assert err.field == field


@pytest.mark.parametrize("provider", sorted(REQUIRED_FIELD))
def test_missing_required_field(sandbox, provider):
    client = make_client(sandbox, provider)
    fields = sample(provider)
    del fields[REQUIRED_FIELD[provider]]
    err = raises("missing_field", client.create_record, fields)
    assert err.field == REQUIRED_FIELD[provider]


@pytest.mark.parametrize("provider", DEDUPES)
def test_duplicate_names_the_existing_record(sandbox, provider):
    client = make_client(sandbox, provider)
    first = client.create_record(sample(provider, email="same@example.com", lineup_id="lu-1"))
    err = raises(
        "duplicate", client.create_record, sample(provider, email="same@example.com", lineup_id="lu-2")
    )
    assert err.existing_id == first.remote_id
    assert not err.transient


@pytest.mark.parametrize("provider", [p for p in RECORD_PROVIDERS if p not in DEDUPES])
def test_a_provider_without_duplicate_checks_finds_our_record_by_lineup_id(sandbox, provider):
    """What the engine asks before it creates again a record whose first create may have landed (issue 12)."""
    client = make_client(sandbox, provider)
    assert client.finds_by_external_id
    client.create_record(sample(provider, email="same@example.com", lineup_id="lu-other"))
    ours = client.create_record(sample(provider, email="same@example.com", lineup_id="lu-ours"))
    found = client.find_by_external_id("lu-ours")
    assert found is not None and found.remote_id == ours.remote_id
    assert found.fields["lineup_id"] == "lu-ours"
    assert client.find_by_external_id("lu-never-made") is None


def test_no_batch_client_relies_on_a_look_up():
    """push_batch writes its attempts after the call and never looks up: a provider whose creates need the
    look-up (it refuses no duplicate) must push one record per call, through push_record."""
    for provider in PROVIDERS:
        cls = get_client_class(provider)
        assert not (cls.finds_by_external_id and cls.batch_size), provider


# ------------------------------------------------------------------------------------------ outages


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_down_refuse_and_status(sandbox, provider):
    client = make_client(sandbox, provider)
    assert client.status().indicator == "none"
    sandbox.control(provider, mode="down")
    err = raises("provider_5xx", client.check_credentials)
    assert err.http_status == 503 and err.transient
    status = client.status()
    assert status.indicator in ("major", "critical")
    sandbox.control(provider, mode="refuse")
    raises("connection", client.check_credentials)
    sandbox.control(provider, mode="ok")
    client.check_credentials()


def test_slow_provider_times_out(sandbox):
    client = make_client(sandbox, "workday", timeout=0.3)
    sandbox.control("workday", mode="slow", delay=1)
    err = raises("timeout", client.check_credentials)  # the 0.3 s timeout fired, not the 1 s answer
    assert err.transient and err.call.http_status is None


def test_sandbox_secrets_never_reach_the_call_log(sandbox):
    creds = sandbox.credentials("hubspot", ACCOUNT)
    client = get_client(
        "hubspot",
        base_url=sandbox.base_url("hubspot"),
        credentials=creds,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    tokens = client.refresh_token()
    client.create_record(sample("hubspot"))
    dump = json.dumps([c.__dict__ for c in client.calls])
    for secret in (creds["access_token"], creds["refresh_token"], tokens.access_token, CLIENT_SECRET):
        assert secret not in dump


# ------------------------------------------------------------------------------------------ webhooks


@pytest.mark.parametrize("provider", ["hubspot", "greenhouse", "lever", "pandadoc"])
def test_sandbox_webhooks_verify_and_parse(sandbox, canned, provider):
    canned.add("POST", "/hooks/in", 200, {"ok": True})
    secret = "whsec-sandbox"
    hook_url = f"{canned.url}/hooks/in"
    sandbox.subscribe(provider, ACCOUNT, hook_url, secret)
    fields = sample(provider)
    created = sandbox.create_record(provider, ACCOUNT, fields)
    remote_id = str(created.get("id") or created.get("record", {}).get("id"))
    deadline = time.monotonic() + 5
    while not canned.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert canned.requests, "the sandbox delivered no webhook"
    seen = canned.requests[0]
    query = "&".join(f"{k}={v}" for k, vs in seen.query.items() for v in vs)
    url = hook_url + (f"?{query}" if query else "")
    assert get_client_class(provider).verify_webhook(
        secret=secret, method="POST", url=url, headers=seen.headers, body=seen.body
    )
    assert not get_client_class(provider).verify_webhook(
        secret="other", method="POST", url=url, headers=seen.headers, body=seen.body
    )
    events = get_client_class(provider).parse_webhook(headers=seen.headers, body=seen.body)
    assert events and events[0].remote_id == remote_id
    # PandaDoc only has document_state_changed: a new draft is a state change like any other
    assert events[0].action == ("updated" if provider == "pandadoc" else "created")
    assert events[0].event_id
