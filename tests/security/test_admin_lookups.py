"""Issue 13, M1 and L10: changelist lookups are the declared filters only; no oracle on secret columns."""

import pytest
from django.contrib import admin
from django.urls import reverse

from integrations.models import ApiToken, Integration
from tests.support import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(db):
    integration = factories.integration(provider="hubspot", credentials={"access_token": "secret-token"})
    factories.api_token(scope="admin")
    return integration


@pytest.mark.parametrize(
    "query",
    [
        "credentials__regex=^gAAAAA",
        "credentials__startswith=g",
        "webhook_secret__regex=.",
        "tenant__integrations__credentials__regex=^g",
        "base_url__regex=.",
        "poll_interval__gt=abc",
        "last_error__contains=x",
    ],
)
@pytest.mark.parametrize("who", ["viewer", "superuser"])
def test_integration_changelist_refuses_undeclared_lookups(client, seeded, request, who, query):
    client.force_login(request.getfixturevalue(who))
    response = client.get(reverse("admin:integrations_integration_changelist") + "?" + query)
    assert response.status_code == 400


@pytest.mark.parametrize("query", ["token_hash__startswith=a", "token_hash__regex=^a", "prefix__regex=."])
def test_api_token_hashes_are_no_oracle(client, seeded, superuser, query):
    client.force_login(superuser)
    response = client.get(reverse("admin:integrations_apitoken_changelist") + "?" + query)
    assert response.status_code == 400


def test_users_password_hashes_are_no_oracle(client, superuser):
    client.force_login(superuser)
    response = client.get(reverse("admin:auth_user_changelist") + "?password__startswith=md5")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "provider__exact=hubspot",
        "status__exact=error",
        "token=expired",
        "mode__exact=webhook",
        "tenant__id__exact=1",
    ],
)
def test_declared_filters_still_work(client, seeded, viewer, query):
    client.force_login(viewer)
    response = client.get(reverse("admin:integrations_integration_changelist") + "?" + query)
    assert response.status_code == 200


def test_every_registered_admin_is_protected():
    from integrations.admin.lookups import DeclaredLookupsOnly

    assert all(isinstance(m, DeclaredLookupsOnly) for m in admin.site._registry.values())
    assert Integration in admin.site._registry and ApiToken in admin.site._registry
