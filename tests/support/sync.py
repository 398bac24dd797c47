"""Integrations at the sandbox, local records, and both sides' views of them, for tests over real HTTP."""

from datetime import timedelta

from django.utils import timezone

from integrations.catalog import PROVIDERS
from integrations.engine.mapping import mapping_for
from integrations.engine.quota import provider_quota
from integrations.models import Integration, Record
from tests.support import factories

CRM_ATS = ["hubspot", "salesforce", "greenhouse", "lever", "workday"]


def connect(sandbox, provider: str, tenant=None, **kw) -> Integration:
    """An integration of a tenant at the sandbox, holding credentials the sandbox issued."""
    tenant = tenant or factories.tenant()
    creds = sandbox.credentials(provider, tenant.slug)
    expires = timezone.now() + timedelta(seconds=creds["expires_in"]) if creds.get("expires_in") else None
    kw.setdefault("mode", "polling")
    integration = factories.integration(
        tenant=tenant,
        provider=provider,
        base_url=sandbox.base_url(provider),
        credentials=creds,
        expires_at=expires,
        **kw,
    )
    provider_quota().reset(provider)
    return integration


def local_records(integration: Integration, n: int, **payload) -> list[Record]:
    kind = PROVIDERS[integration.provider].record_kind
    return [factories.record(tenant=integration.tenant, kind=kind, **payload) for _ in range(n)]


def remote_view(sandbox, integration) -> dict[str, dict]:
    """The sandbox's records of this tenant, as local payloads keyed by lineup_id."""
    mapping = mapping_for(integration)
    return {
        external_id(r): mapping.to_local(r["fields"])
        for r in sandbox.records(integration.provider, integration.tenant.slug)
    }


def external_id(remote: dict) -> str | None:
    """Our lineup_id as the sandbox shows it (Salesforce keeps it in a custom field)."""
    fields = remote["fields"]
    return fields.get("lineup_id") or fields.get("Lineup_Id__c")


def local_view(integration) -> dict[str, dict]:
    mapping = mapping_for(integration)
    out = {}
    for record in Record.objects.filter(tenant=integration.tenant):
        fields, _ = mapping.to_remote(record.payload, str(record.external_id))
        out[str(record.external_id)] = mapping.to_local(fields)
    return out
