"""Recording what a provider call did: the attempt's SyncLog row, the rollups, and the integration's status."""

from datetime import datetime

from django.utils import timezone

from integrations.catalog import PROVIDERS
from integrations.engine import rollups
from integrations.models import Integration, SyncLog, SyncStatus
from integrations.providers import CallInfo, ProviderError


def attempt_row(
    integration: Integration, direction: str, operation: str, *, status: str = SyncStatus.RUNNING, **fields
) -> SyncLog:
    """An attempt's row, not saved yet: the integration's tenant, provider and (unless given) object type."""
    fields.setdefault("object_type", PROVIDERS[integration.provider].object_type)
    return SyncLog(
        integration=integration,
        tenant_id=integration.tenant_id,
        provider=integration.provider,
        direction=direction,
        operation=operation,
        status=status,
        **fields,
    )


def record_call(log_row: SyncLog, call: CallInfo | None) -> None:
    if call is None:
        return
    log_row.http_status = call.http_status
    log_row.endpoint = call.endpoint[:300]
    log_row.rate_limit_headers = call.rate_limit or {}
    log_row.request_excerpt = call.request_excerpt
    log_row.response_excerpt = call.response_excerpt
    log_row.duration_ms = call.duration_ms


def finish_attempt(row: SyncLog, *, counted: bool = True) -> None:
    """Save an attempt's outcome and count it for the error rates (a call the provider never saw is not counted).

    Every outcome, RETRYING included, has its finish time; `counted` is kept on the row so that a check that
    counts sync logs counts exactly what the rollups count (by finish time, like the rollups' minutes).
    """
    row.finished_at = row.finished_at or timezone.now()
    row.counted = counted
    row.save()
    if counted:
        rollups.count(
            provider=row.provider,
            endpoint=row.endpoint or "(quota wait)",
            category=row.error_category if row.status != SyncStatus.SUCCESS else "",
        )


def note_success(integration: Integration, when: datetime) -> None:
    Integration.objects.filter(pk=integration.pk).update(last_success_at=when)
    Integration.objects.filter(pk=integration.pk).settle_status()


def note_error(integration: Integration, error: ProviderError, when: datetime) -> None:
    Integration.objects.filter(pk=integration.pk).update(
        last_error_at=when, last_error_category=error.category, last_error=str(error)[:2000]
    )
    Integration.objects.filter(pk=integration.pk).settle_status()


def note_outcomes(
    integration: Integration, when: datetime, *, success: bool, error: ProviderError | None
) -> None:
    """A batch's successes and its worst error at once: one UPDATE and one status, as note_success then
    note_error at the same time would leave them."""
    changes = {"last_success_at": when} if success else {}
    if error is not None:
        changes.update(last_error_at=when, last_error_category=error.category, last_error=str(error)[:2000])
    if not changes:
        return
    Integration.objects.filter(pk=integration.pk).update(**changes)
    Integration.objects.filter(pk=integration.pk).settle_status()
