"""Credential actions against the sandbox over HTTP: reconnect, re-authorize, update an API key, rotate, check_token."""

import html
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from integrations import errors, services
from integrations.access import crypto
from integrations.access.actors import System
from integrations.models import AuditEvent, Integration
from integrations.selectors.tokens import check_token
from integrations.services import credentials as cred
from tests.support import factories
from tests.support.credentials import consent, local, raw_credentials, start
from tests.support.sync import connect

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.integrations.credential_test_urls")]


@pytest.fixture
def cred_admin(db):
    return factories.user("credadmin", group=factories.ADMIN)


def text(response) -> str:
    """The page as a reader sees it (entities unescaped)."""
    return html.unescape(response.content.decode())


def audit_text() -> str:
    return json.dumps(list(AuditEvent.objects.values("action", "actor", "details")), default=str)


def revoked(sandbox, provider="hubspot", **kw) -> Integration:
    """An OAuth integration whose refresh token the provider no longer accepts (RB-02 step 2)."""
    integration = connect(sandbox, provider, **kw)
    sandbox.control(provider, expire_tokens=True, revoke_refresh_tokens=True)
    return integration


# ------------------------------------------------------------------------------------------ reconnect


@pytest.mark.parametrize("provider", ["hubspot", "salesforce", "lever"])
def test_reconnect_after_expired_tokens_refreshes_and_moves_last_refreshed_at(sandbox, operator, provider):
    integration = connect(sandbox, provider)
    old_token = integration.credentials["access_token"]
    sandbox.control(provider, expire_tokens=True)

    result = services.integration_reconnect(integration=integration, actor=operator)

    integration.refresh_from_db()
    assert result.details["outcome"] == cred.CONNECTED and result.changed == 1
    assert integration.last_refreshed_at is not None
    assert integration.credentials["access_token"] != old_token
    assert integration.status == "connected"
    event = AuditEvent.objects.get(action="integration.reconnect")
    assert (event.actor, event.details["outcome"]) == ("operator", "connected")
    assert old_token not in audit_text() and integration.credentials["access_token"] not in audit_text()
    assert integration.credentials["access_token"] not in json.dumps(result.details, default=str)


def test_reconnect_after_revoked_refresh_token_says_reauthorize_and_marks_needs_reauth(sandbox, operator):
    integration = revoked(sandbox, "lever")
    result = services.integration_reconnect(integration=integration, actor=operator)
    integration.refresh_from_db()
    assert result.details["outcome"] == cred.NEEDS_REAUTH and result.details["needs_reauth"]
    assert result.details["message"] == cred.MSG_NEEDS_REAUTH and "re-authorize" in result.details["message"]
    assert integration.status == "needs_reauth" and result.changed == 0


def test_reconnect_without_a_refresh_token_needs_reauth_without_calling_the_provider(sandbox, operator):
    integration = connect(sandbox, "hubspot")
    Integration.objects.filter(pk=integration.pk).update(credentials={"access_token": "x"})
    result = services.integration_reconnect(integration=integration, actor=operator)
    assert result.details["outcome"] == cred.NEEDS_REAUTH
    assert Integration.objects.get(pk=integration.pk).status == "needs_reauth"
    assert sandbox.requests("hubspot") == []


def test_reconnect_of_an_api_key_provider_says_update_the_api_key_when_the_key_is_refused(sandbox, operator):
    integration = connect(sandbox, "greenhouse")
    assert (
        services.integration_reconnect(integration=integration, actor=operator).details["outcome"]
        == cred.CONNECTED
    )
    sandbox.control("greenhouse", expire_tokens=True)  # revokes every issued key
    result = services.integration_reconnect(integration=integration, actor=operator)
    assert result.details["outcome"] == cred.UPDATE_API_KEY
    assert "update the API key" in result.details["message"]


def test_reconnect_while_the_provider_is_down_fails_without_needing_reauth(sandbox, operator):
    integration = connect(sandbox, "hubspot")
    sandbox.control("hubspot", mode="down")
    result = services.integration_reconnect(integration=integration, actor=operator)
    assert result.details["outcome"] == cred.FAILED
    assert Integration.objects.get(pk=integration.pk).status != "needs_reauth"


# ------------------------------------------------------------------------------------------ re-authorization


@pytest.mark.parametrize("provider", ["hubspot", "salesforce", "lever"])
def test_full_reauthorization_flow_stores_new_tokens_and_connects(client, sandbox, cred_admin, provider):
    integration = revoked(sandbox, provider)
    services.integration_reconnect(integration=integration, actor=cred_admin)
    assert Integration.objects.get(pk=integration.pk).status == "needs_reauth"
    client.force_login(cred_admin)

    to_provider = start(client, integration)
    assert to_provider.startswith(sandbox.base_url(provider))
    query = parse_qs(urlsplit(to_provider).query)
    assert query["account"] == [integration.tenant.slug] and query["state"]
    back = consent(to_provider)
    assert back.startswith("http://testserver/integrations/oauth/callback/") and "code=" in back

    response = client.get(local(back))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:integrations_integration_change", args=[integration.pk])
    integration.refresh_from_db()
    assert integration.status == "connected" and integration.last_error_category == ""
    assert integration.credentials["refresh_token"] and integration.last_refreshed_at
    assert crypto.is_current(raw_credentials(integration))
    # The new tokens belong to the tenant's account and work: a sync-style call succeeds.
    cred._client(integration).check_credentials()
    assert sandbox.requests(provider, account=integration.tenant.slug)[-1]["status"] == 200
    actions = list(
        AuditEvent.objects.filter(integration=integration).values_list("action", "details__outcome")
    )
    assert ("integration.authorize_start", "started") in actions
    assert ("integration.authorize_complete", "authorized") in actions
    assert integration.credentials["access_token"] not in audit_text()
    assert integration.credentials["refresh_token"] not in audit_text()


def _snapshot(integration):
    i = Integration.objects.get(pk=integration.pk)
    return i.credentials, i.status, i.expires_at, i.last_refreshed_at


def test_reused_state_is_refused_and_changes_nothing(client, sandbox, cred_admin):
    integration = revoked(sandbox)
    client.force_login(cred_admin)
    back = local(consent(start(client, integration)))
    assert client.get(back).status_code == 302
    before = _snapshot(integration)
    response = client.get(back)
    assert response.status_code == 400
    assert errors.OAUTH_STATE_USED in text(response)
    assert _snapshot(integration) == before


def test_bad_state_is_refused_with_a_clear_page_and_changes_nothing(client, sandbox, cred_admin):
    integration = revoked(sandbox)
    before = _snapshot(integration)
    client.force_login(cred_admin)
    response = client.get(reverse("integration_oauth_callback"), {"code": "abc", "state": "forged"})
    assert response.status_code == 400
    assert errors.OAUTH_STATE_INVALID in text(response)
    assert _snapshot(integration) == before


def test_state_of_another_session_or_user_is_refused(client, sandbox, cred_admin):
    integration = revoked(sandbox)
    before = _snapshot(integration)
    client.force_login(cred_admin)
    back = local(consent(start(client, integration)))
    other = factories.user("other-admin", group=factories.ADMIN)
    client.force_login(other)  # a new session: the pending state is not in it
    response = client.get(back)
    assert response.status_code == 400 and errors.OAUTH_STATE_USED in text(response)
    assert _snapshot(integration) == before


def test_expired_state_is_refused(client, sandbox, cred_admin, monkeypatch):
    integration = revoked(sandbox)
    before = _snapshot(integration)
    client.force_login(cred_admin)
    back = local(consent(start(client, integration)))
    monkeypatch.setattr(cred, "STATE_MAX_AGE", -1)
    response = client.get(back)
    assert response.status_code == 400 and errors.OAUTH_STATE_EXPIRED in text(response)
    assert _snapshot(integration) == before


def test_denied_consent_shows_the_provider_error_and_changes_nothing(client, sandbox, cred_admin):
    integration = revoked(sandbox)
    before = _snapshot(integration)
    client.force_login(cred_admin)
    back = consent(start(client, integration), decision="deny")
    assert "error=access_denied" in back
    response = client.get(local(back))
    assert response.status_code == 400 and errors.OAUTH_DENIED in text(response)
    assert _snapshot(integration) == before
    assert AuditEvent.objects.get(action="integration.authorize_complete").details["outcome"] == "denied"


def test_refused_code_changes_nothing(client, sandbox, cred_admin):
    integration = revoked(sandbox)
    before = _snapshot(integration)
    client.force_login(cred_admin)
    back = consent(start(client, integration))
    query = parse_qs(urlsplit(back).query)
    response = client.get(
        reverse("integration_oauth_callback"), {"code": "not-a-code", "state": query["state"][0]}
    )
    assert response.status_code == 400 and errors.OAUTH_CODE_REFUSED in text(response)
    assert _snapshot(integration) == before


def test_operator_without_credentials_right_cannot_start_or_complete(client, sandbox, operator):
    integration = revoked(sandbox)
    client.force_login(operator)
    assert client.get(reverse("integration_authorize", args=[integration.pk])).status_code == 403
    assert client.get(reverse("integration_oauth_callback"), {"code": "x", "state": "y"}).status_code == 403
    with pytest.raises(PermissionDenied):
        services.integration_authorize_start(
            integration=integration, actor=operator, redirect_uri="http://testserver/cb", session={}
        )


def test_authorize_of_an_api_key_provider_is_refused(sandbox, cred_admin):
    integration = connect(sandbox, "greenhouse")
    with pytest.raises(errors.ServiceError, match=errors.NOT_OAUTH):
        services.integration_authorize_start(
            integration=integration, actor=cred_admin, redirect_uri="http://testserver/cb", session={}
        )


# ------------------------------------------------------------------------------------------ API keys


def test_good_api_key_is_tested_saved_encrypted_and_connects(sandbox, cred_admin):
    integration = connect(sandbox, "greenhouse")
    sandbox.control("greenhouse", expire_tokens=True)  # the old key is revoked at the provider
    services.integration_reconnect(integration=integration, actor=cred_admin)
    assert Integration.objects.get(pk=integration.pk).status == "needs_reauth"
    new_key = sandbox.credentials("greenhouse", integration.tenant.slug)["api_key"]

    result = services.integration_update_api_key(integration=integration, actor=cred_admin, api_key=new_key)

    integration.refresh_from_db()
    assert result.details == {"outcome": "updated"}
    assert integration.credentials["api_key"] == new_key and integration.status == "connected"
    assert new_key not in raw_credentials(integration)
    assert AuditEvent.objects.filter(action="integration.update_api_key", details__outcome="updated").exists()
    assert new_key not in audit_text()


@pytest.mark.parametrize("provider", ["workday", "pandadoc", "clearbit"])
def test_other_key_providers_accept_a_good_key(sandbox, cred_admin, provider):
    integration = connect(sandbox, provider)
    new = sandbox.credentials(provider, integration.tenant.slug)["api_key"]
    services.integration_update_api_key(integration=integration, actor=cred_admin, api_key=new)
    assert Integration.objects.get(pk=integration.pk).credentials["api_key"] == new


def test_bad_api_key_is_refused_and_the_old_key_is_kept(sandbox, cred_admin):
    integration = connect(sandbox, "greenhouse")
    old = integration.credentials["api_key"]
    with pytest.raises(errors.ServiceError, match=errors.API_KEY_REJECTED):
        services.integration_update_api_key(
            integration=integration, actor=cred_admin, api_key="gh-wrong-KEY-999"
        )
    integration.refresh_from_db()
    assert integration.credentials["api_key"] == old and integration.status == "connected"
    assert "gh-wrong-KEY-999" not in audit_text()


def test_empty_key_and_oauth_provider_are_refused(sandbox, cred_admin):
    gh, hub = connect(sandbox, "greenhouse"), connect(sandbox, "hubspot")
    with pytest.raises(errors.ServiceError, match=errors.API_KEY_REQUIRED):
        services.integration_update_api_key(integration=gh, actor=cred_admin, api_key="  ")
    with pytest.raises(errors.ServiceError, match=errors.NOT_API_KEY):
        services.integration_update_api_key(integration=hub, actor=cred_admin, api_key="x")


def test_viewer_and_operator_may_not_update_a_key(sandbox, viewer, operator):
    integration = connect(sandbox, "greenhouse")
    for actor in (viewer, operator):
        with pytest.raises(PermissionDenied):
            services.integration_update_api_key(integration=integration, actor=actor, api_key="x")
    with pytest.raises(PermissionDenied):
        services.integration_reconnect(integration=integration, actor=viewer)
    assert not AuditEvent.objects.exists()


def test_api_key_page_saves_a_good_key_and_never_shows_a_key(client, sandbox, cred_admin):
    integration = connect(sandbox, "greenhouse")
    url = reverse("admin:integrations_integration_api_key", args=[integration.pk])
    client.force_login(cred_admin)
    page = client.get(url).content.decode()
    assert 'type="password"' in page and integration.credentials["api_key"] not in page

    bad = client.post(url, {"api_key": "gh-wrong-KEY-999"})
    assert bad.status_code == 200
    assert errors.API_KEY_REJECTED in text(bad) and "gh-wrong-KEY-999" not in bad.content.decode()

    new_key = sandbox.credentials("greenhouse", integration.tenant.slug)["api_key"]
    good = client.post(url, {"api_key": new_key}, follow=True)
    html = good.content.decode()
    assert "API key of" in html and new_key not in html
    assert Integration.objects.get(pk=integration.pk).credentials["api_key"] == new_key


def test_change_page_offers_credential_buttons_by_right(client, sandbox, cred_admin, operator, viewer):
    hub, gh = connect(sandbox, "hubspot"), connect(sandbox, "greenhouse")
    hub_url = reverse("admin:integrations_integration_change", args=[hub.pk])
    gh_url = reverse("admin:integrations_integration_change", args=[gh.pk])

    client.force_login(cred_admin)
    html = client.get(hub_url).content.decode()
    assert 'id="lo-reconnect"' in html and 'id="lo-reauthorize"' in html and "Update API key" not in html
    assert 'id="lo-update-api-key"' in client.get(gh_url).content.decode()
    client.force_login(operator)
    html = client.get(hub_url).content.decode()
    assert 'id="lo-reconnect"' in html and 'id="lo-reauthorize"' not in html
    client.force_login(viewer)
    html = client.get(hub_url).content.decode()
    assert 'id="lo-reconnect"' not in html and 'id="lo-reauthorize"' not in html
    assert client.post(reverse("admin:integrations_integration_reconnect", args=[hub.pk])).status_code == 403
    assert client.get(reverse("admin:integrations_integration_api_key", args=[gh.pk])).status_code == 403
    for secret in (
        hub.credentials["access_token"],
        hub.credentials["refresh_token"],
        gh.credentials["api_key"],
    ):
        assert secret not in html


def test_reconnect_button_offers_reauthorize_when_the_refresh_is_refused(client, sandbox, cred_admin):
    integration = revoked(sandbox)
    client.force_login(cred_admin)
    response = client.post(
        reverse("admin:integrations_integration_reconnect", args=[integration.pk]), follow=True
    )
    html = response.content.decode()
    assert cred.MSG_NEEDS_REAUTH in html
    assert (
        f'href="{reverse("integration_authorize", args=[integration.pk])}" id="lo-reauthorize-link"' in html
    )


# ------------------------------------------------------------------------------------------ rotation


def test_rotate_with_store_in_vault_reencrypts_with_the_new_first_key(sandbox, cred_admin, settings):
    hubs = [connect(sandbox, "hubspot") for _ in range(3)]
    gh = connect(sandbox, "greenhouse")
    old_key = settings.FERNET_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.FERNET_KEYS = [new_key, old_key]
    assert not any(crypto.is_current(raw_credentials(i)) for i in hubs)
    before = {i.pk: i.credentials["access_token"] for i in hubs}

    result = services.credentials_rotate(provider="hubspot", actor=cred_admin, store_in_vault=True)

    assert (result.details["n_refreshed"], result.details["n_reencrypted"], result.details["n_failed"]) == (
        3,
        3,
        0,
    )
    assert result.changed == 3
    for i in hubs:
        i.refresh_from_db()
        assert crypto.is_current(raw_credentials(i))
        assert i.credentials["access_token"] != before[i.pk]
    assert not crypto.is_current(raw_credentials(gh))  # another provider: untouched
    settings.FERNET_KEYS = [new_key]  # the old key can go
    assert all(Integration.objects.get(pk=i.pk).credentials["refresh_token"] for i in hubs)
    assert AuditEvent.objects.filter(action="integration.rotate_credentials", actor="credadmin").count() == 3


def test_rotate_reencrypts_api_key_providers_and_counts_failures(sandbox, cred_admin, settings):
    gh = connect(sandbox, "greenhouse")
    lever_ok, lever_gone = connect(sandbox, "lever"), connect(sandbox, "lever")
    Integration.objects.filter(pk=lever_gone.pk).update(credentials={"access_token": "a"})
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), settings.FERNET_KEYS[0]]

    result = services.credentials_rotate(provider="greenhouse", actor=cred_admin, store_in_vault=True)
    assert result.details["n_reencrypted"] == 1 and crypto.is_current(raw_credentials(gh))
    key = gh.credentials["api_key"]
    assert Integration.objects.get(pk=gh.pk).credentials["api_key"] == key

    result = services.credentials_rotate(provider="lever", actor=cred_admin, store_in_vault=False)
    assert (result.details["n_refreshed"], result.details["n_failed"], result.details["n_reencrypted"]) == (
        1,
        1,
        0,
    )
    assert not crypto.is_current(raw_credentials(lever_gone))
    assert crypto.is_current(raw_credentials(lever_ok))  # a refresh saves under the newest key anyway


def test_rotate_works_in_chunks(sandbox, cred_admin, settings, monkeypatch):
    monkeypatch.setattr(cred, "REENCRYPT_CHUNK", 2)
    items = [connect(sandbox, "pandadoc") for _ in range(5)]
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), settings.FERNET_KEYS[0]]
    result = services.credentials_rotate(provider="pandadoc", actor=System("cli"), store_in_vault=True)
    assert result.details["n_reencrypted"] == 5
    assert all(crypto.is_current(raw_credentials(i)) for i in items)


def test_rotate_needs_the_credentials_right(sandbox, operator):
    connect(sandbox, "hubspot")
    with pytest.raises(PermissionDenied):
        services.credentials_rotate(provider="hubspot", actor=operator, store_in_vault=True)
    with pytest.raises(errors.ServiceError):
        services.credentials_rotate(provider="nope", actor=System("cli"), store_in_vault=True)


# ------------------------------------------------------------------------------------------ admin bulk actions


def test_bulk_reconnect_action_confirms_and_reports_counts(client, sandbox, operator):
    ok = connect(sandbox, "hubspot")
    gone = connect(sandbox, "lever")
    sandbox.control("lever", revoke_refresh_tokens=True)
    url = reverse("admin:integrations_integration_changelist")
    client.force_login(operator)
    data = {"action": "reconnect", ACTION_CHECKBOX_NAME: [ok.pk, gone.pk]}
    confirm = client.post(url, data)
    assert confirm.status_code == 200 and "will act on" in confirm.content.decode()
    assert not AuditEvent.objects.filter(action="integration.reconnect").exists()
    done = client.post(url, {**data, "confirm": "yes"}, follow=True)
    assert "Reconnect: 1 row changed, 1 already so, needs reauth: 1" in done.content.decode()
    assert Integration.objects.get(pk=gone.pk).status == "needs_reauth"


def test_bulk_rotate_action_needs_the_credentials_right(client, sandbox, operator, cred_admin, settings):
    hub = connect(sandbox, "hubspot")
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), settings.FERNET_KEYS[0]]
    url = reverse("admin:integrations_integration_changelist")
    data = {
        "action": "rotate_credentials",
        ACTION_CHECKBOX_NAME: [hub.pk],
        "confirm": "yes",
        "store_in_vault": "on",
    }
    client.force_login(operator)
    refused = client.post(url, data, follow=True).content.decode()
    assert "needs the right to manage credentials" in refused and not crypto.is_current(raw_credentials(hub))
    client.force_login(cred_admin)
    done = client.post(url, data, follow=True).content.decode()
    assert "refreshed: 1, reencrypted: 1, failed: 0" in done
    assert crypto.is_current(raw_credentials(hub))


# ------------------------------------------------------------------------------------------ check_token


def test_check_token_reports_expiry_refresh_tokens_and_a_summary(sandbox, operator):
    fresh = connect(sandbox, "hubspot")
    expired = connect(sandbox, "hubspot")
    Integration.objects.filter(pk=expired.pk).update(
        expires_at=timezone.now() - timezone.timedelta(minutes=5)
    )
    gone = revoked(sandbox)
    Integration.objects.filter(pk=gone.pk).update(credentials={"access_token": "a"}, expires_at=None)
    services.integration_reconnect(integration=gone, actor=operator)

    report = check_token("hubspot")

    rows = {r["integration_id"]: r for r in report["integrations"]}
    assert rows[fresh.pk]["has_refresh_token"] and 0 < rows[fresh.pk]["seconds_to_expiry"] <= 86400
    assert rows[expired.pk]["seconds_to_expiry"] < 0
    assert rows[gone.pk]["status"] == "needs_reauth" and not rows[gone.pk]["has_refresh_token"]
    assert report["summary"] == {
        "total": 3,
        "expired": 1,
        "expiring_24h": 1,
        "needs_reauth": 1,
        "no_refresh_token": 1,
    }
    text = json.dumps(report)
    assert fresh.credentials["access_token"] not in text and fresh.credentials["refresh_token"] not in text
    with pytest.raises(ValueError):
        check_token("nope")
