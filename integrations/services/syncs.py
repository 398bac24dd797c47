"""Starting syncs: after a change, for the integrations that take the changed records."""

from integrations.catalog import PROVIDERS
from integrations.models import Integration, Record
from integrations.services.common import enqueue_after_commit


def enqueue_syncs(integration_ids, *, record_ids: list[int] | None = None) -> None:
    """Start syncs after the current transaction commits (a sync must see what was just saved)."""
    for pk in sorted(set(integration_ids)):
        enqueue_after_commit("integrations.sync_integration", pk, None, record_ids)


def crm_targets(record: Record) -> list[int]:
    """The callable CRM/ATS integrations of the record's tenant that push its kind (enrichment does not)."""
    return [
        integration.pk
        for integration in Integration.objects.callable().filter(tenant_id=record.tenant_id)
        if PROVIDERS[integration.provider].record_kind == record.kind
        and PROVIDERS[integration.provider].category != "enrichment"
    ]


def records_changed(*, record_ids: list[int]) -> int:
    """Local records changed: sync them to every integration of their tenant that takes their kind."""
    pairs = set(Record.objects.filter(pk__in=record_ids).values_list("tenant_id", "kind"))
    kinds = {}
    for tenant_id, kind in pairs:
        kinds.setdefault(kind, set()).add(tenant_id)
    targets = []
    for integration in Integration.objects.callable().filter(tenant_id__in={t for t, _ in pairs}):
        if integration.tenant_id in kinds.get(PROVIDERS[integration.provider].record_kind, ()):
            targets.append(integration.pk)
    enqueue_syncs(targets)
    return len(targets)
