"""Secrets never leave the encrypted column: not in sync-log excerpts, logs, the API or admin pages."""

import logging

import pytest
from django.urls import reverse

from integrations.engine import run
from integrations.models import AuditEvent, Integration, SyncLog
from tests.support import factories
from tests.support.sync import connect, local_records

pytestmark = pytest.mark.django_db


def secrets_of(integration: Integration) -> list[str]:
    integration.refresh_from_db()
    return [
        v
        for k, v in integration.credentials.items()
        if k in ("access_token", "refresh_token", "api_key") and v
    ]


@pytest.mark.parametrize("provider", ["hubspot", "greenhouse", "lever", "pandadoc"])
def test_no_secret_in_excerpts_logs_api_or_admin(provider, sandbox, client, superuser, caplog):
    caplog.set_level(logging.DEBUG)
    integration = connect(sandbox, provider)
    local_records(integration, 2)
    before = secrets_of(integration)
    sandbox.control(provider, expire_tokens=True) if integration.auth_type == "oauth2" else None
    run.sync_integration(integration.pk, pull=True)
    after = secrets_of(integration)
    secrets = set(before + after)
    assert secrets and SyncLog.objects.filter(integration=integration).exists()

    texts = []
    for row in SyncLog.objects.filter(integration=integration):
        texts += [row.request_excerpt, row.response_excerpt, str(row.rate_limit_headers), row.error_message]
    texts += [str(e.details) for e in AuditEvent.objects.all()]
    texts.append(caplog.text)
    _, token = factories.api_token(scope="admin")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    texts.append(client.get("/api/v1/integrations/status", **auth).content.decode())
    for row in SyncLog.objects.filter(integration=integration)[:5]:
        texts.append(
            client.get(f"/api/v1/integrations/{provider}/sync-logs/{row.pk}", **auth).content.decode()
        )
    client.force_login(superuser)
    texts.append(
        client.get(reverse("admin:integrations_integration_change", args=[integration.pk])).content.decode()
    )
    texts.append(client.get(reverse("admin:integrations_synclog_changelist")).content.decode())
    for row in SyncLog.objects.filter(integration=integration)[:5]:
        texts.append(client.get(reverse("admin:integrations_synclog_change", args=[row.pk])).content.decode())
    blob = "\n".join(texts)
    for secret in secrets:
        assert secret not in blob
