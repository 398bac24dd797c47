"""A scene for the dashboard: HubSpot in outage, Greenhouse mostly fine, plus the backlog around them."""

from datetime import timedelta

from django.utils import timezone

from incidents.models import Incident
from integrations.engine import rollups
from integrations.models import Defect, ProviderStatusReading, SyncLog, WebhookDelivery
from tests.support import factories

HUB_ENDPOINT = "POST /crm/v3/objects/contacts"


def outage_scene(now=None) -> dict:
    """HubSpot: 40 of 100 calls failed in the last 15 minutes (5xx), status page 'major', an open SEV-2."""
    now = now or timezone.now()
    acme = factories.tenant(name="Acme Recruiting", slug="acme")
    globex = factories.tenant(name="Globex", slug="globex")
    hub_acme = factories.integration(tenant=acme, provider="hubspot", status="error")
    hub_globex = factories.integration(tenant=globex, provider="hubspot", status="connected")
    gh_acme = factories.integration(
        tenant=acme, provider="greenhouse", status="connected", expires_at=now + timedelta(hours=3)
    )
    factories.integration(
        tenant=globex, provider="greenhouse", status="needs_reauth", expires_at=now + timedelta(days=3)
    )

    # Rollups: the numbers the dashboard reads (the sync engine keeps them as calls end).
    # (In the fast window too: 30 of the last 90 calls failed, so the dashboard says "Outage".)
    rollups.count(provider="hubspot", endpoint=HUB_ENDPOINT, at=now - timedelta(minutes=1), n=60)
    rollups.count(
        provider="hubspot",
        endpoint=HUB_ENDPOINT,
        category="provider_5xx",
        at=now - timedelta(minutes=1),
        n=30,
    )
    rollups.count(
        provider="hubspot",
        endpoint="GET /crm/v3/objects/contacts",
        category="timeout",
        at=now - timedelta(minutes=5),
        n=10,
    )
    # The 15 minutes before: healthy, so the trend is "rising".
    rollups.count(provider="hubspot", endpoint=HUB_ENDPOINT, at=now - timedelta(minutes=20), n=100)
    # Yesterday evening, outside the 15-minute window but inside the 24-hour sparkline.
    rollups.count(
        provider="hubspot", endpoint=HUB_ENDPOINT, category="provider_5xx", at=now - timedelta(hours=5), n=7
    )
    rollups.count(provider="greenhouse", endpoint="POST /v1/candidates", at=now - timedelta(minutes=3), n=98)
    rollups.count(
        provider="greenhouse",
        endpoint="POST /v1/candidates",
        category="validation",
        at=now - timedelta(minutes=3),
        n=2,
    )
    # Older than 24 hours: on no chart.
    rollups.count(
        provider="greenhouse",
        endpoint="POST /v1/candidates",
        category="validation",
        at=now - timedelta(hours=30),
        n=50,
    )

    # Sync logs behind the numbers (the changelist links open these).
    failed = [
        factories.sync_log(
            count=False,
            integration=hub_acme,
            status="FAILED",
            error_category="provider_5xx",
            http_status=503,
            endpoint=HUB_ENDPOINT,
            error_message="Service temporarily unavailable",
        )
        for _ in range(3)
    ]
    factories.sync_log(
        count=False,
        integration=hub_acme,
        status="RETRYING",
        error_category="timeout",
        endpoint="GET /crm/v3/objects/contacts",
        next_attempt_at=now - timedelta(seconds=5),
    )
    factories.sync_log(
        count=False,
        integration=hub_globex,
        status="RETRYING",
        error_category="provider_5xx",
        endpoint=HUB_ENDPOINT,
        next_attempt_at=now + timedelta(minutes=5),
    )
    ok = factories.sync_log(
        count=False,
        integration=hub_globex,
        status="SUCCESS",
        endpoint=HUB_ENDPOINT,
        rate_limit_headers={
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": "7",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        },
    )
    # A newer HubSpot row without headers (a connection error) must not hide the headers above.
    factories.sync_log(
        count=False, integration=hub_acme, status="FAILED", error_category="connection", endpoint=HUB_ENDPOINT
    )
    old = factories.sync_log(
        count=False,
        integration=hub_acme,
        status="FAILED",
        error_category="provider_5xx",
        endpoint=HUB_ENDPOINT,
    )
    SyncLog.objects.filter(pk=old.pk).update(created_at=now - timedelta(hours=2))
    gh_log = factories.sync_log(
        count=False,
        integration=gh_acme,
        status="SUCCESS",
        endpoint="POST /v1/candidates",
        rate_limit_headers={"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "44"},
    )

    for n in range(2):
        WebhookDelivery.objects.create(
            integration=hub_acme,
            provider="hubspot",
            event_id=f"evt-{n}",
            status="FAILED",
            last_error="HTTP 503",
        )
    WebhookDelivery.objects.create(
        integration=hub_acme, provider="hubspot", event_id="evt-ok", status="PROCESSED"
    )

    for _ in range(3):
        Defect.objects.create(
            defect_type="STALE_CRM_SYNC", provider="hubspot", tenant=acme, integration=hub_acme
        )
    Defect.objects.create(
        defect_type="STALE_ENRICHMENT", provider="hubspot", tenant=globex, integration=hub_globex
    )
    Defect.objects.create(defect_type="STALE_CRM_SYNC", provider="hubspot", tenant=acme, status="RESOLVED")

    incident = Incident.objects.create(
        runbook="RB-09",
        provider="hubspot",
        title="HubSpot 5xx errors",
        severity="SEV-2",
        detected_by="IDISIntegrationProviderErrors",
        started_at=now - timedelta(minutes=14),
    )
    incident.affected_tenants.add(acme)
    Incident.objects.create(
        runbook="RB-03",
        provider="greenhouse",
        title="old one",
        severity="SEV-3",
        detected_by="ops",
        status="closed",
    )

    ProviderStatusReading.objects.create(
        provider="hubspot",
        indicator="major",
        description="Elevated API error rates",
        read_at=now - timedelta(minutes=1),
    )
    ProviderStatusReading.objects.create(
        provider="greenhouse",
        indicator="none",
        description="All Systems Operational",
        read_at=now - timedelta(minutes=1),
    )
    return {
        "acme": acme,
        "globex": globex,
        "hub_acme": hub_acme,
        "gh_acme": gh_acme,
        "failed": failed,
        "headers_log": ok,
        "gh_log": gh_log,
        "incident": incident,
        "now": now,
    }
