"""One sync run of one integration: due retries, then changed records (or chosen ones), then a pull when polling."""

import uuid
from dataclasses import dataclass, field

from django.utils import timezone

from integrations.catalog import PROVIDERS
from integrations.engine.calls import CallContext, may_call
from integrations.engine.leases import acquire_lease, release_lease, renew_lease
from integrations.engine.pull import pull_changes
from integrations.engine.push import enrich_record, is_enrichment, pending_records, push_batch, push_record
from integrations.models import AUTH_CATEGORIES, Integration, Record, SyncLog, SyncMode, SyncStatus

BATCH_SIZE = 200
# After this many transient failures in a row a batch stops: the provider is down, the rest waits.
BREAKER_TRANSIENT_IN_A_ROW = 3


@dataclass
class SyncSummary:
    integration_id: int
    ran: bool = False
    reason: str = ""
    pushed: int = 0
    failed: int = 0
    retrying: int = 0
    pulled: dict = field(default_factory=dict)
    more: bool = False


def sync_integration(
    integration_id: int, *, pull: bool | None = None, record_ids: list[int] | None = None
) -> SyncSummary:
    """One sync run: due retries, then changed records (or just `record_ids`), then a pull when polling."""
    summary = SyncSummary(integration_id=integration_id)
    integration = Integration.objects.select_related("tenant").filter(pk=integration_id).first()
    if integration is None:
        summary.reason = "gone"
        return summary
    if not may_call(integration.pk) or not integration.has_credentials:
        summary.reason = (
            f"not syncing: {integration.status}" if integration.has_credentials else "no credentials"
        )
        return summary
    owner = uuid.uuid4().hex
    if not acquire_lease(integration.pk, owner):
        summary.reason = "another sync is running"
        return summary
    summary.ran = True
    try:
        ctx = CallContext(integration, lease_owner=owner)
        transient_in_a_row = 0
        step = enrich_record if is_enrichment(integration) else push_record
        if ctx.client.batch_size and not is_enrichment(integration):
            stopped = _push_in_batches(ctx, integration, _work(integration, record_ids), summary)
            if stopped:
                summary.reason = stopped
                return summary
        for record, retry_of in (
            ()
            if ctx.client.batch_size and not is_enrichment(integration)
            else _with_priority(integration, _work(integration, record_ids))
        ):
            renew_lease(integration.pk, owner)
            ctx.priority = bool(record.sync_priority_at)
            row = step(ctx, record, retry_of=retry_of)
            if record.sync_priority_at:
                Record.objects.filter(pk=record.pk).update(sync_priority_at=None)
            if row.status == SyncStatus.SUCCESS:
                summary.pushed += 1
                transient_in_a_row = 0
            elif row.status == SyncStatus.RETRYING:
                summary.retrying += 1
                transient_in_a_row += 1
            else:
                summary.failed += 1
                transient_in_a_row = 0
            if row.error_category in AUTH_CATEGORIES or not may_call(integration.pk):
                summary.reason = "stopped: integration cannot call its provider"
                return summary
            if transient_in_a_row >= BREAKER_TRANSIENT_IN_A_ROW:
                summary.reason = "stopped: provider failing, the rest waits for the retry schedule"
                return summary
        if is_enrichment(integration):
            pull = False  # nothing to pull from an enrichment provider
        if pull is None and integration.mode == SyncMode.POLLING and record_ids is None:
            integration.refresh_from_db()
            # A run started for pushes does not poll a provider whose last poll failed until its backoff ends.
            pull = not (integration.poll_retry_at and integration.poll_retry_at > timezone.now())
        if pull:
            renew_lease(integration.pk, owner)
            integration.refresh_from_db()
            summary.pulled = pull_changes(ctx)
        if record_ids is None:
            summary.more = pending_records(integration).exists() or due_retries(integration).exists()
    finally:
        release_lease(integration.pk, owner)
    return summary


def _push_in_batches(ctx: CallContext, integration: Integration, work, summary: SyncSummary) -> str:
    """Push the run's work with the provider's batch API, priority records first; "" or why the run stopped."""
    # "Sync now" records go first, asked before the run or while it runs: looked for once per batch, not once
    # per record (a query per record was most of the engine's time per record).
    queue = list(work)
    size = ctx.client.batch_size
    done: set[int] = set()
    while True:
        urgent = [(r, None) for r in _priority_records(integration).exclude(pk__in=done)[:size]]
        done.update(r.pk for r, _ in urgent)
        chunk = urgent
        while queue and len(chunk) < size:
            record, retry_of = queue.pop(0)
            if record.pk not in done:
                done.add(record.pk)
                chunk.append((record, retry_of))
        if not chunk:
            break
        ctx.priority = any(r.sync_priority_at for r, _ in chunk)  # ahead of the backlog in the quota
        rows = push_batch(ctx, chunk)
        urgent = [record.pk for record, _ in chunk if record.sync_priority_at]
        if urgent:
            Record.objects.filter(pk__in=urgent).update(sync_priority_at=None)
        for row in rows:
            if row.status == SyncStatus.SUCCESS:
                summary.pushed += 1
            elif row.status == SyncStatus.RETRYING:
                summary.retrying += 1
            else:
                summary.failed += 1
        if any(row.error_category in AUTH_CATEGORIES for row in rows) or not may_call(integration.pk):
            return "stopped: integration cannot call its provider"
        if rows and all(row.status == SyncStatus.RETRYING for row in rows):
            return "stopped: provider failing, the rest waits for the retry schedule"
    return ""


def due_retries(integration: Integration):
    """Attempts whose retry is due: RETRYING ones not yet retried, and PENDING ones an operator queued."""
    return SyncLog.objects.filter(
        integration=integration,
        status__in=[SyncStatus.RETRYING, SyncStatus.PENDING],
        next_attempt_at__lte=timezone.now(),
        record__isnull=False,
    )


def _work(integration: Integration, record_ids: list[int] | None):
    """What one run pushes: due retries first (oldest first), then records that changed, BATCH_SIZE at most."""
    budget = BATCH_SIZE
    if record_ids is not None:
        for record in Record.objects.filter(pk__in=record_ids, tenant_id=integration.tenant_id).order_by(
            "pk"
        ):
            yield record, None
        return
    retries = list(
        due_retries(integration).select_related("record").order_by("next_attempt_at", "pk")[:budget]
    )
    retried = set()
    for row in retries:
        retried.add(row.record_id)
        yield row.record, row
    budget -= len(retries)
    if budget <= 0:
        return
    records = list(pending_records(integration).exclude(pk__in=retried).order_by("updated_at", "pk")[:budget])
    # A record pushed before its retry is due (it changed again, or reconcile made it pushable) is that retry:
    # the attempt it supersedes points at it, and is not retried a second time.
    waiting = {
        row.record_id: row
        for row in SyncLog.objects.filter(
            integration=integration,
            record_id__in=[r.pk for r in records],
            status__in=[SyncStatus.RETRYING, SyncStatus.PENDING],
            next_attempt_at__isnull=False,
        ).order_by("pk")
    }
    for record in records:
        yield record, waiting.get(record.pk)


def _priority_records(integration: Integration):
    return Record.objects.filter(
        tenant_id=integration.tenant_id,
        kind=PROVIDERS[integration.provider].record_kind,
        sync_priority_at__isnull=False,
    ).order_by("sync_priority_at", "pk")


def _with_priority(integration: Integration, work):
    """Records asked for "Sync now" go first, even when asked while this run is already under way (RB-03)."""
    done: set[int] = set()
    for record, retry_of in work:
        for urgent in _priority_records(integration).exclude(pk__in=done)[:50]:
            done.add(urgent.pk)
            yield urgent, None
        if record.pk not in done:
            done.add(record.pk)
            yield record, retry_of
    for urgent in _priority_records(integration).exclude(pk__in=done)[:50]:
        yield urgent, None
