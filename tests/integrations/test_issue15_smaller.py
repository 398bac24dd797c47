"""Issue 15, the smaller items: --dry-run where README promises it, ?provider= on the queues endpoint, and
clear_stale_defects scoped with --since / --incident."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from integrations import services
from integrations.access.actors import System
from integrations.models import AuditAction, Defect, Integration, SyncLog
from tests.support import factories

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_set_mode_and_defer_enrichment_take_dry_run_and_change_nothing():
    factories.integration(provider="hubspot", mode="webhook")
    assert "Would set 1 hubspot" in run("set_mode", "--provider", "hubspot", "--mode", "polling", "--dry-run")
    assert "Would set" in run("defer_enrichment", "--provider", "hubspot", "--on", "--dry-run")
    integration = Integration.objects.get()
    assert integration.mode == "webhook" and not integration.enrichment_defer_on_error
    assert not integration.audit_events.exists()


def test_the_queues_endpoint_filters_by_provider_and_says_why_celery_is_missing(client, settings):
    settings.CELERY_BROKER_URL = "memory://"
    hub = factories.integration(provider="hubspot", tenant=factories.tenant(slug="a"))
    sf = factories.integration(provider="salesforce", tenant=factories.tenant(slug="b"))
    factories.sync_log(integration=hub, status="PENDING")
    factories.sync_log(integration=sf, status="PENDING")
    factories.sync_log(integration=sf, status="PENDING")
    _, raw = factories.api_token()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    body = client.get("/api/v1/system-metrics/queues?provider=hubspot", **auth).json()
    data = body.get("data", body)
    assert data["provider"] == "hubspot" and data["sync_logs"]["pending"] == 1
    assert data["celery"] and "unavailable" in data["celery"]
    assert client.get("/api/v1/system-metrics/queues?provider=nope", **auth).status_code == 400
    assert SyncLog.objects.count() == 3


def _stale(tenant, provider="hubspot", ago=timedelta(0)):
    d = Defect.objects.create(tenant=tenant, provider=provider, defect_type="STALE_CRM_SYNC")
    Defect.objects.filter(pk=d.pk).update(created_at=timezone.now() - ago)
    return d


def test_clear_stale_defects_scoped_to_since_or_to_an_incident():
    tenant = factories.tenant(slug="acme")
    old = _stale(tenant, ago=timedelta(hours=2))
    mine = _stale(tenant)
    services.audit(
        actor=System("cli"),
        action=AuditAction.DEFECTS_CREATE_STALE,
        provider="hubspot",
        details={"changed": 1, "incident": 7},
    )
    assert "Would resolve 1" in run(
        "clear_stale_defects", "--provider", "hubspot", "--since", "30 minutes ago", "--dry-run"
    )
    run("clear_stale_defects", "--provider", "hubspot", "--incident", "INC-7")
    old.refresh_from_db(), mine.refresh_from_db()
    assert (old.status, mine.status) == ("OPEN", "RESOLVED")


def test_clear_stale_defects_refuses_an_incident_that_made_none():
    from integrations.timespec import UsageError

    with pytest.raises(UsageError, match="INC-99 created no stale hubspot defects"):
        call_command("clear_stale_defects", "--provider", "hubspot", "--incident", "99", stdout=StringIO())
