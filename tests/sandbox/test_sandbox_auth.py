"""Sandbox auth: consent page + code exchange, refresh, expiry, revocation, API keys."""

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.sandbox import PROBE, probe, session_for

OAUTH = {
    # provider: (consent path, token path)
    "hubspot": ("/oauth/authorize", "/oauth/v1/token"),
    "salesforce": ("/services/oauth2/authorize", "/services/oauth2/token"),
    "lever": ("/oauth/authorize", "/oauth/token"),
}
APP = {"client_id": "lineup-ops", "client_secret": "sandbox-client-secret"}
REDIRECT = "http://127.0.0.1:8000/oauth/callback/"


def consent_code(sandbox, provider, account="acme", redirect_uri=REDIRECT, state="xyz"):
    consent, _ = OAUTH[provider]
    url = sandbox.base_url(provider) + consent
    params = {
        "client_id": APP["client_id"],
        "redirect_uri": redirect_uri,
        "state": state,
        "response_type": "code",
    }
    page = requests.get(url, params={**params, "account": account}, timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    form = {**params, "account": account, "decision": "grant"}
    granted = requests.post(url, params=params, data=form, allow_redirects=False, timeout=5)
    assert granted.status_code == 302
    location = granted.headers["Location"]
    assert location.startswith(redirect_uri + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    return query["code"][0]


def exchange(sandbox, provider, code, redirect_uri=REDIRECT, as_json=False, **overrides):
    _, token_path = OAUTH[provider]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        **APP,
        **overrides,
    }
    kwargs = {"json": data} if as_json else {"data": data}
    return requests.post(sandbox.base_url(provider) + token_path, timeout=5, **kwargs)


def refresh(sandbox, provider, refresh_token, **overrides):
    _, token_path = OAUTH[provider]
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **APP, **overrides}
    return requests.post(sandbox.base_url(provider) + token_path, data=data, timeout=5)


def test_consent_page_shows_app_and_prefills_account(sandbox):
    url = sandbox.base_url("hubspot") + "/oauth/authorize"
    page = requests.get(
        url, params={"client_id": "lineup-ops", "redirect_uri": REDIRECT, "account": "acme"}, timeout=5
    ).text
    assert "lineup-ops" in page and REDIRECT in page and "Grant access" in page
    assert re.search(r'name="account" value="acme"', page)
    default = requests.get(url, params={"client_id": "lineup-ops", "redirect_uri": REDIRECT}, timeout=5).text
    assert re.search(r'name="account" value="demo"', default)
    bad = requests.get(url, params={"client_id": "someone-else", "redirect_uri": REDIRECT}, timeout=5)
    assert bad.status_code == 400 and "client_id" in bad.text


def test_consent_deny_redirects_with_access_denied(sandbox):
    url = sandbox.base_url("lever") + "/oauth/authorize"
    params = {"client_id": "lineup-ops", "redirect_uri": REDIRECT, "state": "s1"}
    r = requests.post(
        url,
        params=params,
        data={**params, "account": "acme", "decision": "deny"},
        allow_redirects=False,
        timeout=5,
    )
    assert r.status_code == 302
    assert parse_qs(urlsplit(r.headers["Location"]).query) == {"error": ["access_denied"], "state": ["s1"]}


@pytest.mark.parametrize("provider", sorted(OAUTH))
def test_code_exchange_once_and_tokens_work(sandbox, provider):
    code = consent_code(sandbox, provider, account="acme")
    r = exchange(sandbox, provider, code, as_json=provider == "lever")
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["access_token"] and tokens["refresh_token"]
    if provider == "salesforce":
        assert "expires_in" not in tokens
        assert tokens["instance_url"] == sandbox.base_url("salesforce")
    else:
        assert tokens["expires_in"] == {"hubspot": 1800, "lever": 3600}[provider]
    # the token is the account's: what it reads is acme's
    assert probe(sandbox, provider, session_for(provider, tokens)).status_code == 200
    assert sandbox.requests(provider, account="acme")[-1]["status"] == 200

    again = exchange(sandbox, provider, code)
    assert again.status_code == 400
    if provider == "hubspot":
        assert again.json()["status"] == "BAD_AUTH_CODE"
    else:
        assert again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("provider", sorted(OAUTH))
def test_code_exchange_checks_redirect_uri_and_app(sandbox, provider):
    code = consent_code(sandbox, provider)
    wrong_app = exchange(sandbox, provider, code, client_secret="nope")
    assert wrong_app.status_code in (400, 401)
    mismatch = exchange(sandbox, provider, code, redirect_uri="http://evil.example/cb")
    assert mismatch.status_code == 400
    body = mismatch.json()
    assert body.get("status") == "BAD_REDIRECT_URI" or body.get("error") in (
        "invalid_grant",
        "redirect_uri_mismatch",
    )
    # the failed attempts did not burn the code
    assert exchange(sandbox, provider, code).status_code == 200


@pytest.mark.parametrize("provider", sorted(OAUTH))
def test_refresh_grant(sandbox, provider):
    creds = sandbox.credentials(provider, "acme")
    r = refresh(sandbox, provider, creds["refresh_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["access_token"] != creds["access_token"]
    if provider == "salesforce":
        assert "refresh_token" not in body and "expires_in" not in body  # no rotation, session timeout
    else:
        assert body["refresh_token"] == creds["refresh_token"]
        assert body["expires_in"] > 0
    assert probe(sandbox, provider, session_for(provider, body)).status_code == 200


def test_token_endpoint_refuses_other_apps(sandbox):
    creds = sandbox.credentials("salesforce", "acme")
    r = refresh(sandbox, "salesforce", creds["refresh_token"], client_id="other-app")
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"
    r = refresh(sandbox, "hubspot", "x", client_secret="wrong")
    assert r.status_code == 400 and r.json()["status"] == "BAD_CLIENT_ID"
    r = refresh(sandbox, "lever", "x", client_secret="wrong")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


EXPIRED = {
    "hubspot": lambda b: (
        b["category"] == "EXPIRED_AUTHENTICATION"
        and re.match(r"The OAuth token used to make this call expired \d+ second\(s\) ago\.", b["message"])
    ),
    "salesforce": lambda b: (
        b == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    ),
    "lever": lambda b: b == {"code": "Unauthorized", "message": "Expired access token"},
}


@pytest.mark.parametrize("provider", sorted(OAUTH))
def test_expired_access_token_body_then_refresh_recovers(sandbox, provider):
    creds = sandbox.credentials(provider, "acme")
    s = session_for(provider, creds)
    assert probe(sandbox, provider, s).status_code == 200
    sandbox.control(provider, expire_tokens=True)
    r = probe(sandbox, provider, s)
    assert r.status_code == 401
    assert EXPIRED[provider](r.json()), r.text
    fresh = refresh(sandbox, provider, creds["refresh_token"]).json()
    assert probe(sandbox, provider, session_for(provider, fresh)).status_code == 200


def test_token_ttl_sets_lifetime(sandbox):
    sandbox.control("lever", token_ttl=1)
    assert sandbox.state("lever")["token_ttl"] == 1
    creds = sandbox.credentials("lever", "acme")
    assert creds["expires_in"] == 1
    s = session_for("lever", creds)
    assert probe(sandbox, "lever", s).status_code == 200
    time.sleep(1.05)
    assert probe(sandbox, "lever", s).json() == {"code": "Unauthorized", "message": "Expired access token"}
    sandbox.control("lever", token_ttl=None)
    assert sandbox.credentials("lever", "acme")["expires_in"] == 3600


@pytest.mark.parametrize(
    "provider,check",
    [
        (
            "hubspot",
            lambda b: (
                b["status"] == "BAD_REFRESH_TOKEN" and b["message"] == "missing or invalid refresh token"
            ),
        ),
        (
            "salesforce",
            lambda b: b == {"error": "invalid_grant", "error_description": "expired access/refresh token"},
        ),
        ("lever", lambda b: b["error"] == "invalid_grant"),
    ],
)
def test_revoked_refresh_token(sandbox, provider, check):
    creds = sandbox.credentials(provider, "acme")
    sandbox.control(provider, revoke_refresh_tokens=True)
    r = refresh(sandbox, provider, creds["refresh_token"])
    assert r.status_code == 400
    assert check(r.json()), r.text
    assert refresh(sandbox, provider, "never-issued").status_code == 400


def test_invalid_bearer_token(sandbox):
    s = session_for("hubspot", {"access_token": "made-up"})
    r = probe(sandbox, "hubspot", s)
    assert r.status_code == 401 and r.json()["category"] == "INVALID_AUTHENTICATION"
    r = requests.get(sandbox.base_url("salesforce") + PROBE["salesforce"], timeout=5)
    assert r.status_code == 401 and r.json()[0]["errorCode"] == "INVALID_SESSION_ID"


@pytest.mark.parametrize("provider", ["greenhouse", "workday", "pandadoc", "clearbit"])
def test_api_key_providers(sandbox, provider):
    creds = sandbox.credentials(provider, "acme")
    assert set(creds) == ({"api_key", "tenant"} if provider == "workday" else {"api_key"})
    good = session_for(provider, creds)
    assert probe(sandbox, provider, good).status_code in (200, 404)  # clearbit: unknown person
    bad = probe(sandbox, provider, session_for(provider, {"api_key": "not-a-key"}))
    assert bad.status_code == 401
    none = requests.get(sandbox.base_url(provider) + PROBE[provider], timeout=5)
    assert none.status_code == 401
    # expire_tokens on an API-key provider revokes the issued keys
    sandbox.control(provider, expire_tokens=True)
    assert probe(sandbox, provider, good).status_code == 401


def test_api_key_error_bodies(sandbox):
    r = probe(sandbox, "greenhouse", session_for("greenhouse", {"api_key": "nope"}))
    assert r.json() == {"message": "Invalid Basic Auth credentials"}
    r = probe(sandbox, "pandadoc", session_for("pandadoc", {"api_key": "nope"}))
    assert r.json()["type"] == "authorization_error"
    r = probe(sandbox, "clearbit", session_for("clearbit", {"api_key": "nope"}))
    assert r.json()["error"]["type"] == "auth_required"
    key = sandbox.credentials("pandadoc", "acme")["api_key"]
    r = requests.get(
        sandbox.base_url("pandadoc") + PROBE["pandadoc"],
        headers={"Authorization": f"Bearer {key}"},
        timeout=5,
    )
    assert r.status_code == 401  # PandaDoc wants "API-Key <key>"


def test_workday_credentials_cover_one_tenant(sandbox):
    creds = sandbox.credentials("workday", "acme")
    assert creds["tenant"] == "acme"
    s = session_for("workday", creds)
    other = s.get(sandbox.base_url("workday") + "/ccx/api/recruiting/v4/globex/prospects", timeout=5)
    assert other.status_code == 401
    assert "errors" in other.json()


def test_accounts_are_isolated(sandbox):
    acme = session_for("hubspot", sandbox.credentials("hubspot", "acme"))
    globex = session_for("hubspot", sandbox.credentials("hubspot", "globex"))
    url = sandbox.base_url("hubspot") + "/crm/v3/objects/contacts"
    created = acme.post(url, json={"properties": {"email": "ann@acme.test"}}, timeout=5).json()
    assert globex.get(f"{url}/{created['id']}", timeout=5).status_code == 404
    assert globex.get(url, timeout=5).json()["results"] == []
    # same email in another account is not a duplicate
    assert globex.post(url, json={"properties": {"email": "ann@acme.test"}}, timeout=5).status_code == 201
    assert [r["id"] for r in sandbox.records("hubspot", "acme")] == [created["id"]]
