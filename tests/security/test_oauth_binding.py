"""Issue 13, H2: a re-authorization for another provider account is refused, changes nothing, is audited."""

import html
from urllib.parse import urlsplit

import pytest
import requests
from django.urls import reverse

from integrations.models import AuditEvent, Integration
from tests.support import factories
from tests.support.sync import connect

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.integrations.credential_test_urls")]


@pytest.fixture
def cred_admin(db):
    return factories.user("credadmin", group=factories.ADMIN)


def grant(client, integration, account: str) -> object:
    """Start Re-authorize, grant at the sandbox's consent page for `account`, follow the redirect back."""
    to_provider = client.get(reverse("integration_authorize", args=[integration.pk]))["Location"]
    answer = requests.post(
        to_provider, data={"decision": "grant", "account": account}, allow_redirects=False, timeout=10
    )
    back = urlsplit(answer.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def snapshot(integration):
    i = Integration.objects.get(pk=integration.pk)
    return i.credentials, i.status, i.expires_at, i.provider_account


@pytest.mark.parametrize("provider", ["hubspot", "salesforce"])
def test_h2_a_grant_for_another_tenants_account_is_refused_and_audited(client, sandbox, cred_admin, provider):
    acme = connect(sandbox, provider)
    other = connect(sandbox, provider)
    client.force_login(cred_admin)
    # First grant: the integration is bound to its own account.
    assert grant(client, acme, acme.tenant.slug).status_code == 302
    acme.refresh_from_db()
    assert acme.provider_account
    before = snapshot(acme)
    # The consent page's account changed to the other tenant's.
    response = grant(client, acme, other.tenant.slug)
    assert response.status_code == 400
    assert "another" in html.unescape(response.content.decode())
    assert snapshot(acme) == before
    event = AuditEvent.objects.get(action="integration.authorize_refused")
    assert event.details["bound_account"] == acme.provider_account
    assert event.details["granted_account"] and event.details["granted_account"] != acme.provider_account
    # The next sync still reads the tenant's own account.
    from integrations.services import credentials as cred

    cred._client(Integration.objects.get(pk=acme.pk)).check_credentials()
    assert sandbox.requests(provider, account=acme.tenant.slug)[-1]["status"] == 200


def test_h2_an_unbound_integration_is_checked_against_the_tokens_it_holds(client, sandbox, cred_admin):
    acme = connect(sandbox, "hubspot")
    other = connect(sandbox, "hubspot")
    assert not acme.provider_account
    client.force_login(cred_admin)
    before = snapshot(acme)
    assert grant(client, acme, other.tenant.slug).status_code == 400
    assert snapshot(acme) == before
    assert AuditEvent.objects.filter(action="integration.authorize_refused").count() == 1


def test_the_hubspot_sandbox_answers_access_token_metadata_in_hubspots_shape(sandbox):
    creds = sandbox.credentials("hubspot", "acme")
    info = requests.get(
        f"{sandbox.base_url('hubspot')}/oauth/v1/access-tokens/{creds['access_token']}", timeout=5
    ).json()
    assert isinstance(info["hub_id"], int) and info["token"] == creds["access_token"]
