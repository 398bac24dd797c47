"""Issue 13: an inactive tenant's tokens, syncs and webhooks are refused (webhooks: test_webhook_attacks)."""

import pytest

from integrations.engine import calls
from integrations.models import Integration, Tenant
from tests.support import factories

pytestmark = pytest.mark.django_db


def test_an_inactive_tenants_token_is_refused(client):
    tenant = factories.tenant()
    _, raw = factories.api_token(scope="tenant", tenant=tenant)
    url = "/api/v1/integrations/status"
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)
    answer = client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "tenant_inactive"


def test_an_inactive_tenants_integrations_never_sync():
    integration = factories.integration(provider="hubspot")
    assert calls.may_call(integration.pk)
    Tenant.objects.filter(pk=integration.tenant_id).update(is_active=False)
    assert not calls.may_call(integration.pk)
    assert not Integration.objects.callable().filter(pk=integration.pk).exists()  # what dispatch walks
