"""Pulling provider changes into the local data."""

import uuid
from datetime import datetime, timedelta

from django.utils import timezone

from integrations.catalog import PROVIDERS
from integrations.engine.calls import CallContext, NotCallable, QuotaUnavailable, backoff_seconds
from integrations.engine.mapping import EXTERNAL_ID, mapping_for
from integrations.engine.outcomes import finish_attempt, note_error, note_success, record_call
from integrations.models import (
    CrmSyncStatus,
    Integration,
    Record,
    RecordLink,
    SyncDirection,
    SyncLog,
    SyncStatus,
)
from integrations.providers import ProviderError, RemoteRecord

POLL_OVERLAP = timedelta(minutes=2)


def apply_remote(integration: Integration, remote: RemoteRecord, *, when: datetime) -> tuple[Record, str]:
    """Bring one provider record into the local data: update its linked record, adopt ours, or create one."""
    link = (
        RecordLink.objects.select_related("record")
        .filter(integration=integration, remote_id=remote.remote_id)
        .first()
    )
    record = link.record if link else None
    outcome = "updated"
    if record is None:
        lineup_id = remote.fields.get(EXTERNAL_ID)
        if lineup_id:
            try:
                record = Record.objects.filter(
                    tenant_id=integration.tenant_id, external_id=uuid.UUID(str(lineup_id))
                ).first()
            except ValueError:
                record = None
        if record is None:
            record = Record.objects.create(
                tenant_id=integration.tenant_id,
                kind=PROVIDERS[integration.provider].record_kind,
                payload=mapping_for(integration).to_local(remote.fields),
                crm_sync_status=CrmSyncStatus.SYNCED,
            )
            outcome = "created"
    payload = {**record.payload, **mapping_for(integration).to_local(remote.fields)}
    if payload != record.payload or outcome == "created":
        Record.objects.filter(pk=record.pk).update(payload=payload, updated_at=when)
    elif outcome != "created":
        outcome = "unchanged"
    RecordLink.objects.update_or_create(
        record=record,
        integration=integration,
        defaults={
            "remote_id": remote.remote_id,
            "synced_at": when,
            "remote_updated_at": remote.updated_at,
            "failed_at": None,
            "last_error_category": "",
        },
    )
    return record, outcome


def poll_due(integration: Integration, now: datetime | None = None) -> bool:
    """A polling integration's next poll: its interval after the last good poll, and not before the backoff
    of a failed one has passed."""
    now = now or timezone.now()
    if integration.poll_retry_at and integration.poll_retry_at > now:
        return False
    return integration.last_polled_at is None or integration.last_polled_at + integration.poll_interval <= now


def pull_changes(ctx: CallContext, *, since: datetime | None = None) -> dict:
    """Fetch what changed at the provider since `since` (default: the last poll) and apply it locally."""
    integration = ctx.integration
    started = timezone.now()
    if since is None and integration.last_polled_at:
        since = integration.last_polled_at - POLL_OVERLAP
    counts = {"created": 0, "updated": 0, "unchanged": 0, "pages": 0}
    cursor = None
    while True:
        row = SyncLog.objects.create(
            integration=integration,
            tenant_id=integration.tenant_id,
            provider=integration.provider,
            direction=SyncDirection.PULL,
            object_type=PROVIDERS[integration.provider].object_type,
            operation="list",
            status=SyncStatus.RUNNING,
        )
        try:
            page = ctx.call(lambda c, cursor=cursor: c.list_records(updated_since=since, cursor=cursor))
        except (ProviderError, NotCallable) as e:
            err = e if isinstance(e, ProviderError) else ProviderError("unknown", str(e))
            record_call(row, err.call)
            row.status, row.error_category, row.error_message = (
                SyncStatus.FAILED,
                err.category,
                err.message[:2000],
            )
            row.finished_at = timezone.now()
            finish_attempt(row, counted=err.call is not None)
            if not isinstance(e, NotCallable) and not isinstance(e, QuotaUnavailable):
                note_error(integration, err, row.finished_at)
            # A failed poll backs off like a failed push (not again at the next dispatch, seconds later).
            failures = integration.poll_failures + 1
            wait = backoff_seconds(failures, getattr(e, "retry_after", None))
            Integration.objects.filter(pk=integration.pk).update(
                poll_failures=failures, poll_retry_at=row.finished_at + timedelta(seconds=wait)
            )
            counts["error"] = err.category
            return counts
        now = timezone.now()
        for remote in page.records:
            _, outcome = apply_remote(integration, remote, when=now)
            counts[outcome] += 1
        record_call(row, ctx.client.last_call)
        row.status, row.finished_at = SyncStatus.SUCCESS, now
        finish_attempt(row)
        counts["pages"] += 1
        cursor = page.next_cursor
        if not cursor:
            break
    Integration.objects.filter(pk=integration.pk).update(
        last_polled_at=started, poll_failures=0, poll_retry_at=None
    )
    note_success(integration, timezone.now())
    return counts
